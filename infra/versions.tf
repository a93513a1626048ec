terraform {
  required_version = ">= 1.6"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.42 introduced key vault's rbac_authorization_enabled
      version = "~> 4.42"
    }
    azuread = {
      source  = "hashicorp/azuread"
      version = "~> 3.0"
    }
    databricks = {
      source  = "databricks/databricks"
      version = "~> 1.60"
    }
  }

  # Partial configuration: the values live in backend.hcl (see backend.hcl.example), so
  # `terraform init -backend-config=backend.hcl` works the same on a laptop and in CI.
  backend "azurerm" {}
}
