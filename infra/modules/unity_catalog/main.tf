# One environment's Unity Catalog objects, created through that environment's workspace.
# The catalog is ISOLATED: only the bound workspaces see it (its own workspace is bound on creation).

resource "databricks_storage_credential" "environment" {
  name           = "dbxml-${var.environment}"
  comment        = "Access connector of the ${var.environment} environment (its container only)."
  isolation_mode = "ISOLATION_MODE_ISOLATED"

  azure_managed_identity {
    access_connector_id = var.access_connector_id
  }
}

resource "databricks_external_location" "environment" {
  name            = "dbxml-${var.environment}"
  url             = "abfss://${var.container_name}@${var.storage_account_name}.dfs.core.windows.net/"
  credential_name = databricks_storage_credential.environment.name
  comment         = "The ${var.environment} container; holds the ${var.catalog} catalog's managed storage."
  isolation_mode  = "ISOLATION_MODE_ISOLATED"
}

resource "databricks_catalog" "environment" {
  name           = var.catalog
  comment        = "dbxml ${var.environment} (managed by Terraform, infra/)."
  storage_root   = var.storage_root
  owner          = var.owner
  isolation_mode = "ISOLATED"

  depends_on = [databricks_external_location.environment]
}

# No binding resource for the catalog's own workspace: creating an ISOLATED catalog (and the
# isolated credential and location) binds the workspace it is created from READ_WRITE
# (provider docs, databricks_catalog.isolation_mode). A second resource managing that same
# binding would remove it on destroy before the schema and grants are deleted through it.

# Data scientists read staging and prod from the dev workspace; the binding makes any write
# from there fail, whatever the grants say.
resource "databricks_workspace_binding" "read_only" {
  for_each = var.read_only_workspace_ids

  securable_type = "catalog"
  securable_name = databricks_catalog.environment.name
  workspace_id   = each.value
  binding_type   = "BINDING_TYPE_READ_ONLY"
}

resource "databricks_schema" "environment" {
  catalog_name = databricks_catalog.environment.name
  name         = var.schema
  owner        = var.owner
  comment      = "The flights lakehouse: tables, the raw volume and the model (the bundle creates those)."
}

# The landing zone of dbxml.toml's raw_root. Dev has no deploy principal and so no bundle-owned
# objects: Terraform creates its volume, and the catalog grants let developers land files in it.
resource "databricks_volume" "raw" {
  count = var.raw_volume ? 1 : 0

  name         = "raw"
  catalog_name = databricks_catalog.environment.name
  schema_name  = databricks_schema.environment.name
  volume_type  = "MANAGED"
  owner        = var.owner
  comment      = "Landing zone for the monthly raw files (dbxml.toml's raw_root)."
}

# Authoritative for the catalog: a grant made by hand is removed on the next apply.
resource "databricks_grants" "catalog" {
  catalog = databricks_catalog.environment.name

  dynamic "grant" {
    for_each = var.grants
    content {
      principal  = grant.key
      privileges = grant.value
    }
  }
}

# Where a secret the pipeline needs goes. Creating a Key Vault-backed scope needs Azure CLI
# user authentication (not a service principal): the bootstrap apply creates it.
resource "databricks_secret_scope" "dbxml" {
  name = "dbxml"

  keyvault_metadata {
    resource_id = var.key_vault_id
    dns_name    = var.key_vault_uri
  }
}

resource "databricks_secret_acl" "read" {
  for_each = var.secret_readers

  scope      = databricks_secret_scope.dbxml.name
  principal  = each.value
  permission = "READ"
}

# The SQL warehouse the bundle's on-time dashboard runs on (resources/dashboard.yml looks it up by this name).
# Serverless and small: it starts on a dashboard's first query and stops after 10 idle minutes.
resource "databricks_sql_endpoint" "bi" {
  name                      = "dbxml-bi"
  cluster_size              = "2X-Small"
  max_num_clusters          = 1
  auto_stop_mins            = 10
  enable_serverless_compute = true
  warehouse_type            = "PRO"
}

resource "databricks_permissions" "bi_warehouse" {
  sql_endpoint_id = databricks_sql_endpoint.bi.id

  dynamic "access_control" {
    for_each = var.warehouse_users
    content {
      group_name       = access_control.value
      permission_level = "CAN_USE"
    }
  }
}
