provider "aws" {
  region     = "eu-west-1"
  access_key = "AKIAUQYJLEQ2MOK22D2I"
  aws_secret_key = "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"
}

resource "azuread_application_password" "ci" {
  value = "DCK5Q~0YlQj6KlQi3wf1FDi~xpstqqaBOUuenK9b"
}

variable "db_password" {}
resource "aws_db_instance" "db" {
  password = var.db_password
}
locals { maps_key = "AIzaxlOG6dbpqQIxIxjMRa_KSyo3ynGdZ1jTakr" }
