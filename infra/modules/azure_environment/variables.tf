variable "environment" {
  description = "dev, staging or prod."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the resource names (<prefix>-<environment>)."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the environment's resources."
  type        = string
}

variable "storage_account_id" {
  description = "Resource id of the shared ADLS Gen2 account."
  type        = string
}

variable "container_name" {
  description = "The environment's container in the shared storage account."
  type        = string
}

variable "tenant_id" {
  description = "Entra tenant of the Key Vault."
  type        = string
}

variable "azure_databricks_object_id" {
  description = "Object id of the AzureDatabricks first-party service principal (reads Key Vault-backed secret scopes)."
  type        = string
}

variable "key_vault_allowed_ip_ranges" {
  description = "Public IP ranges allowed through the Key Vault firewall."
  type        = list(string)
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
}
