data "azurerm_client_config" "current" {}

# Azure Databricks' first-party application: it reads Key Vault-backed secret scopes.
data "azuread_service_principal" "azure_databricks" {
  client_id = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
}

locals {
  # who may run queries on each environment's dbxml-bi warehouse: everyone who reads the dashboard
  warehouse_users = {
    analysts        = var.groups.analysts_group
    data_scientists = var.groups.data_scientists_group
    data_engineers  = var.groups.data_engineers_group
  }
  storage_roots = {
    for name, env in var.environments : name => format(local.storage_root_format, env.container, var.storage_account_name)
  }
  workspace_ids    = { for name, env in module.azure_environment : name => env.workspace_id }
  deploy_client_id = { for name, env in var.environments : name => env.deploy_principal == null ? null : module.identities.client_ids[env.deploy_principal] }
  ci_client_id     = module.identities.client_ids["dbxml-ci"]
}

resource "azurerm_resource_group" "dbxml" {
  name     = var.resource_group_name
  location = var.location
  tags     = var.tags
}

# ---- Storage: one ADLS Gen2 account, one container per environment ----

resource "azurerm_storage_account" "lake" {
  #checkov:skip=CKV_AZURE_35:The workspaces are not VNet-injected in this template; a deny-by-default firewall would cut off classic and serverless compute. Access is Entra-only (shared keys off) and governed by Unity Catalog; README "Hardening" shows how to close it.
  #checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: public network access stays on until private endpoints and a network connectivity config are added.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet-injected workspace, out of scope for this template (README "Hardening").
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys plus infrastructure encryption; customer-managed keys add a key lifecycle this project does not need.
  #checkov:skip=CKV_AZURE_33:No queues are used; queue logging would only produce empty logs.
  #checkov:skip=CKV2_AZURE_21:Blob read logging goes through diagnostic settings to a Log Analytics workspace this template does not create; Unity Catalog audit logs already record data access.
  name                              = var.storage_account_name
  resource_group_name               = azurerm_resource_group.dbxml.name
  location                          = azurerm_resource_group.dbxml.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.storage_replication_type
  is_hns_enabled                    = true
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false
  sftp_enabled                      = false
  public_network_access_enabled     = true
  tags                              = var.tags

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices"]
  }
}

# ---- One Azure environment per Databricks environment ----

module "azure_environment" {
  source   = "./modules/azure_environment"
  for_each = var.environments

  environment                 = each.key
  name_prefix                 = var.name_prefix
  location                    = azurerm_resource_group.dbxml.location
  resource_group_name         = azurerm_resource_group.dbxml.name
  storage_account_id          = azurerm_storage_account.lake.id
  container_name              = each.value.container
  tenant_id                   = data.azurerm_client_config.current.tenant_id
  azure_databricks_object_id  = data.azuread_service_principal.azure_databricks.object_id
  key_vault_allowed_ip_ranges = var.key_vault_allowed_ip_ranges
  tags                        = var.tags
}

# ---- Identities: Entra applications, account service principals, groups, workspace access ----

module "identities" {
  source = "./modules/identities"
  providers = {
    databricks = databricks.account
  }

  github_repository  = var.github_repository
  principals         = local.principals
  groups             = var.groups
  group_workspaces   = local.group_workspaces
  workspace_ids      = local.workspace_ids
  location           = var.location
  resource_group_id  = azurerm_resource_group.dbxml.id
  account_admin_name = "dbxml-infra"
}

# ---- Unity Catalog, one call per environment (each through its own workspace provider) ----

module "unity_catalog_dev" {
  source = "./modules/unity_catalog"
  providers = {
    databricks = databricks.dev
  }
  depends_on = [module.identities]

  environment             = "dev"
  raw_volume              = true
  catalog                 = var.environments["dev"].catalog
  schema                  = var.schema
  storage_root            = local.storage_roots["dev"]
  storage_account_name    = var.storage_account_name
  container_name          = var.environments["dev"].container
  access_connector_id     = module.azure_environment["dev"].access_connector_id
  key_vault_id            = module.azure_environment["dev"].key_vault_id
  key_vault_uri           = module.azure_environment["dev"].key_vault_uri
  read_only_workspace_ids = {}
  # Dev runs as the developer: the data engineers own it, developers read its secrets.
  owner = var.groups.data_engineers_group
  grants = {
    (var.groups.data_scientists_group) = local.privileges.write_dev
    (var.groups.data_engineers_group)  = local.privileges.write_dev
  }
  secret_readers = {
    data_engineers  = var.groups.data_engineers_group
    data_scientists = var.groups.data_scientists_group
  }
  warehouse_users = local.warehouse_users
}

module "unity_catalog_staging" {
  source = "./modules/unity_catalog"
  providers = {
    databricks = databricks.staging
  }
  depends_on = [module.identities]

  environment             = "staging"
  catalog                 = var.environments["staging"].catalog
  schema                  = var.schema
  storage_root            = local.storage_roots["staging"]
  storage_account_name    = var.storage_account_name
  container_name          = var.environments["staging"].container
  access_connector_id     = module.azure_environment["staging"].access_connector_id
  key_vault_id            = module.azure_environment["staging"].key_vault_id
  key_vault_uri           = module.azure_environment["staging"].key_vault_uri
  read_only_workspace_ids = { for name in ["dev"] : name => local.workspace_ids[name] if var.environments["staging"].readable_from_dev }
  owner                   = local.deploy_client_id["staging"]
  grants = {
    (var.groups.data_scientists_group) = local.privileges.data_scientists_read
    (var.groups.data_engineers_group)  = local.privileges.data_engineers_read
    (local.ci_client_id)               = local.privileges.ci_browse
  }
  secret_readers  = { deploy_principal = local.deploy_client_id["staging"] }
  warehouse_users = local.warehouse_users
}

module "unity_catalog_prod" {
  source = "./modules/unity_catalog"
  providers = {
    databricks = databricks.prod
  }
  depends_on = [module.identities]

  environment             = "prod"
  catalog                 = var.environments["prod"].catalog
  schema                  = var.schema
  storage_root            = local.storage_roots["prod"]
  storage_account_name    = var.storage_account_name
  container_name          = var.environments["prod"].container
  access_connector_id     = module.azure_environment["prod"].access_connector_id
  key_vault_id            = module.azure_environment["prod"].key_vault_id
  key_vault_uri           = module.azure_environment["prod"].key_vault_uri
  read_only_workspace_ids = { for name in ["dev"] : name => local.workspace_ids[name] if var.environments["prod"].readable_from_dev }
  owner                   = local.deploy_client_id["prod"]
  grants = {
    (var.groups.data_scientists_group) = local.privileges.data_scientists_read
    (var.groups.data_engineers_group)  = local.privileges.data_engineers_read
    (var.groups.analysts_group)        = local.privileges.analysts_read
    (local.ci_client_id)               = local.privileges.ci_browse
  }
  secret_readers  = { deploy_principal = local.deploy_client_id["prod"] }
  warehouse_users = local.warehouse_users
}
