provider "azurerm" {
  features {
    key_vault {
      # Purge protection is on; never try to purge a vault on destroy.
      purge_soft_delete_on_destroy = false
    }
  }
  subscription_id = var.subscription_id
  # Shared keys are off on the storage account, so data-plane calls use Entra ID.
  storage_use_azuread = true
}

provider "azuread" {}

# Account level: service principals, groups, workspace assignments, the metastore attachment.
provider "databricks" {
  alias      = "account"
  host       = "https://accounts.azuredatabricks.net"
  account_id = var.databricks_account_id
}

# One workspace-level provider per environment (provider blocks cannot use for_each).
provider "databricks" {
  alias                       = "dev"
  host                        = module.azure_environment["dev"].workspace_url
  azure_workspace_resource_id = module.azure_environment["dev"].workspace_resource_id
}

provider "databricks" {
  alias                       = "staging"
  host                        = module.azure_environment["staging"].workspace_url
  azure_workspace_resource_id = module.azure_environment["staging"].workspace_resource_id
}

provider "databricks" {
  alias                       = "prod"
  host                        = module.azure_environment["prod"].workspace_url
  azure_workspace_resource_id = module.azure_environment["prod"].workspace_resource_id
}
