"""CSV logs from other shops load by their own column names (``--dataset PATH``)."""

import gzip

import pytest

from recommendations.ml.datasets import load_csv


def write(tmp_path, name, text):
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def rows(im):
    return {
        (str(im.user_ids[u]), str(im.item_ids[i])) for u, i in zip(*im.X.nonzero(), strict=True)
    }


def test_an_online_retail_ii_export_keeps_purchases_only(tmp_path):
    path = write(
        tmp_path,
        "retail_ii.csv.gz",
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "489434,85048,LED BOX,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n"
        "489434,79323p,LIGHT,12,2009-12-01 07:45:00,6.75,13085.0,United Kingdom\n"
        "C489449,22087,PAPER,-12,2009-12-01 10:33:00,2.95,16321.0,Australia\n"
        "489450,POST,POSTAGE,1,2009-12-01 10:40:00,18.0,16321.0,Australia\n"
        "489451,22111,BOTTLE,1,2009-12-01 10:41:00,0,16321.0,Australia\n"
        "489452,22112,CHICK,1,2009-12-01 10:42:00,4.25,,United Kingdom\n"
        "489453,22113,COSY,2,2009-12-01 10:43:00,4.25,16321.0,Australia\n",
    )
    im = load_csv(path)
    # the cancellation, the postage, the free line and the line without a customer are out
    assert rows(im) == {("13085", "85048"), ("13085", "79323P"), ("16321", "22113")}


def test_other_column_names_and_separators(tmp_path):
    path = write(tmp_path, "log.csv", "Customer_ID;Product-ID\nc1;p1\nc1;p2\nc2;p1\n")
    assert rows(load_csv(path)) == {("c1", "p1"), ("c1", "p2"), ("c2", "p1")}


def test_an_event_log_maps_other_event_names(tmp_path):
    path = write(
        tmp_path,
        "events.csv",
        "timestamp,visitorid,event,itemid,transactionid\n"
        "1433221332117,257597,view,355908,\n"
        "1433224214164,992329,addtocart,248676,\n"
        "1433221999827,111016,transaction,318965,4000\n",
    )
    assert rows(load_csv(path)) == {
        ("257597", "355908"),
        ("992329", "248676"),
        ("111016", "318965"),
    }


def test_users_with_too_few_items_can_be_dropped(tmp_path):
    path = write(tmp_path, "log.csv", "user,item\na,1\na,2\nb,1\n")
    assert rows(load_csv(path, min_items=2)) == {("a", "1"), ("a", "2")}


def test_a_log_without_a_user_column_is_refused_with_the_names_it_accepts(tmp_path):
    path = write(tmp_path, "log.csv", "who,what\na,1\n")
    with pytest.raises(ValueError, match="no user column among \\['who', 'what'\\]"):
        load_csv(path)


def test_an_unknown_event_is_refused(tmp_path):
    path = write(tmp_path, "log.csv", "user,item,event\na,1,teleport\n")
    with pytest.raises(ValueError, match="unknown event types \\['teleport'\\]"):
        load_csv(path)


def test_load_frame_keeps_time_and_orders_of_an_invoice_table(tmp_path):
    from recommendations.ml.datasets import load_frame

    path = write(
        tmp_path,
        "retail_ii.csv",
        "Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID\n"
        "489434,85048,12,2009-12-01 07:45:00,6.95,13085.0\n"
        "489434,79323p,12,2009-12-01 07:45:00,6.75,13085.0\n"
        "C489449,22087,-12,2009-12-01 10:33:00,2.95,16321.0\n"
        "489453,22113,2,2009-12-02 10:43:00,4.25,16321.0\n",
    )
    f = load_frame(str(path))
    assert f["basket"].tolist() == ["489434", "489434", "489453"]
    assert str(f["timestamp"].iloc[2]) == "2009-12-02 10:43:00+00:00"
    assert set(f["event"]) == {"purchase"}


def test_load_frame_reads_epoch_seconds_and_event_names(tmp_path):
    from recommendations.ml.datasets import load_frame

    path = write(tmp_path, "events.csv",
                 "event_time,visitorid,event,itemid\n1433221332,1,view,9\n1433224214,1,buy,9\n")
    f = load_frame(str(path))
    assert f["event"].tolist() == ["view", "purchase"]
    assert str(f["timestamp"].iloc[0]) == "2015-06-02 05:02:12+00:00"


def test_load_frame_without_time_is_refused(tmp_path):
    from recommendations.ml.datasets import load_frame

    with pytest.raises(ValueError, match="no time column"):
        load_frame(str(write(tmp_path, "log.csv", "user,item\na,1\n")))
