import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recommendations', '0009_version_artifact_identity'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ShopperConsent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('visitor_id', models.CharField(blank=True, max_length=64, null=True, unique=True)),
                ('tracking_allowed', models.BooleanField(help_text='False: the shopper opted out (nothing recorded, nothing personal shown).')),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('user', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'shopper consent',
                'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('user__isnull', False), ('visitor_id__isnull', True)), models.Q(('user__isnull', True), ('visitor_id__isnull', False)), _connector='OR'), name='rec_consent_one_shopper')],
            },
        ),
    ]
