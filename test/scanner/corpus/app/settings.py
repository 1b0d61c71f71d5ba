"""Django settings for the orders service."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = os.environ.get("DEBUG", "0") == "1"
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
API_KEY = os.getenv("API_KEY")
password = "changeme"
# placeholder left for local development
STRIPE_PUBLISHABLE = "pk_test_your-key-here"
REQUEST_ID_NAMESPACE = "2d28cdb8-7cb5-478c-a4af-2cffda69f7d8"
STATIC_MANIFEST_SHA256 = "82ea4df94057a8b513ddd9c7ce22e88508d2a27b850190284a3ccc7234b4fd49"
GITHUB_TOKEN = "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"
STRIPE_API_KEY = "sk_live_BSq9WyLxtgbwh3RdxV06puI8JH9BH1ELkMD30HmzUzgoOnox"
AWS_ACCESS_KEY_ID = "AKIAZJGCWUWUEWKQN55N"
aws_secret_access_key = "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"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "PASSWORD": os.environ.get("DB_PASSWORD", ""),
    }
}
REDIS_PASSWORD = "hSfOAU!7AHjEO#11"
ALLOWED_HOSTS = ["orders.internal", "localhost"]
