variable "environment" {
  description = "dev, staging or prod."
  type        = string
}

variable "catalog" {
  description = "Name of the environment's catalog (databricks.yml target variable `catalog`)."
  type        = string
}

variable "schema" {
  description = "Name of the schema created in the catalog."
  type        = string
}

variable "raw_volume" {
  description = "Create the `raw` landing volume here (dev only: in staging and prod the bundle creates it, deployed by the owner)."
  type        = bool
  default     = false
}

variable "storage_root" {
  description = "Managed storage root of the catalog (abfss://<container>@<account>.dfs.core.windows.net/dbxml)."
  type        = string
}

variable "storage_account_name" {
  description = "The shared ADLS Gen2 account."
  type        = string
}

variable "container_name" {
  description = "The environment's container; the external location covers all of it."
  type        = string
}

variable "access_connector_id" {
  description = "Azure resource id of the environment's access connector."
  type        = string
}

variable "key_vault_id" {
  description = "Azure resource id of the environment's Key Vault."
  type        = string
}

variable "key_vault_uri" {
  description = "Vault URI of the environment's Key Vault."
  type        = string
}

variable "read_only_workspace_ids" {
  description = "Other workspaces that may read the catalog (bound READ_ONLY), keyed by environment (static keys: the ids are unknown until apply)."
  type        = map(string)
}

variable "owner" {
  description = "Owner of the catalog and schema: the deploy principal's application id (staging, prod) or a group (dev)."
  type        = string
}

variable "grants" {
  description = "Catalog privileges by principal (group name or service principal application id); they inherit to the schema."
  type        = map(list(string))
}

variable "secret_readers" {
  description = "Principals given READ on the `dbxml` secret scope, under static keys (application ids are unknown until apply)."
  type        = map(string)
}

variable "warehouse_users" {
  description = "Groups given CAN_USE on the dbxml-bi SQL warehouse (the dashboard's viewers), under static keys."
  type        = map(string)
}
