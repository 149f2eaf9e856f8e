// The mobile flow's types, as openapi-typescript generates them from /api/schema/.
// make test-clients generates ./schema.d.ts beside a copy of this file and runs
// `tsc --noEmit --strict`: a schema change that breaks an app's code fails here.
import type { components, paths } from "./schema";

type Schemas = components["schemas"];
type Api = paths;

const minted: Schemas["Visitor"] = { visitor_id: "abc:signature" };

const batch: Schemas["EventBatch"] = {
  visitor_id: minted.visitor_id,
  events: [
    { event: "view", item: 12, client_event_id: "e-1" },
    { event: "add_to_cart", item: 12, quantity: 2, value: 5.1, source: "related:v3" },
  ],
};

// @ts-expect-error an event kind the API does not know is not an EventEnum
const unknownEvent: Schemas["EventBatch"] = { events: [{ event: "teleport", item: 1 }] };

type Listed = Api["/api/recommendations/popular/"]["get"]["responses"][200]["content"]["application/json"];
type PopularQuery = NonNullable<Api["/api/recommendations/popular/"]["get"]["parameters"]["query"]>;
const query: PopularQuery = { k: 12, category: "mugs" };

function names(list: Listed): string[] {
  return list.results.map((recommendation) => recommendation.item.name);
}

function price(item: Schemas["Item"]): string | null | undefined {
  return item.price;
}

type RelatedPath = Api["/api/recommendations/items/{id}/related/"]["get"]["parameters"]["path"];
const related: RelatedPath = { id: 12 };
type NotFound = Api["/api/recommendations/items/{id}/related/"]["get"]["responses"][404]["content"]["application/json"];
const notFound: NotFound = { detail: "No such item." };
type Refused = Api["/api/recommendations/events/"]["post"]["responses"][400]["content"]["application/json"];
const refused: Refused = { events: { "1": { item: ["No such item."] } } };
type NotTracked = Api["/api/recommendations/events/"]["post"]["responses"][200]["content"]["application/json"];
const notTracked: NotTracked = { received: 1, stored: 0, duplicates: 0, tracked: false };
const categories: Api["/api/recommendations/categories/"]["get"]["responses"][200]["content"]["application/json"] = [
  { id: 1, slug: "mugs", name: "Mugs" },
];

export { batch, unknownEvent, query, names, price, related, notFound, refused, notTracked, categories };
