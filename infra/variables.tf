variable "subscription_id" {
  description = "Azure subscription that holds every resource (also GitHub var AZURE_SUBSCRIPTION_ID)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.subscription_id))
    error_message = "subscription_id must be a lowercase UUID."
  }
}

variable "location" {
  description = "Azure region of every resource, as a short name (westeurope); the region's Unity Catalog metastore must already exist."
  type        = string
  default     = "westeurope"

  validation {
    condition     = can(regex("^[a-z]+[a-z0-9]*$", var.location))
    error_message = "location must be a short region name such as westeurope (lowercase, no spaces)."
  }
}

variable "resource_group_name" {
  description = "Resource group for the storage account, access connectors, workspaces and Key Vaults."
  type        = string
  default     = "rg-dbxml"

  validation {
    condition     = can(regex("^[A-Za-z0-9._()-]{1,89}[A-Za-z0-9_()-]$", var.resource_group_name))
    error_message = "resource_group_name must be 1-90 letters, digits, '.', '_', '-', '(' or ')' and not end with '.'."
  }
}

variable "name_prefix" {
  description = "Prefix of workspace, access connector and Key Vault names (<prefix>-<environment>)."
  type        = string
  default     = "dbxml"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.name_prefix))
    error_message = "name_prefix must be 2-10 lowercase letters and digits, starting with a letter (Key Vault names are at most 24 characters)."
  }
}

variable "storage_account_name" {
  description = "The ADLS Gen2 account holding one container per environment; globally unique. dbxml.toml's storage roots assume the default."
  type        = string
  default     = "dbxmlstorage"

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lowercase letters and digits."
  }
}

variable "storage_replication_type" {
  description = "Replication of the storage account."
  type        = string
  default     = "GRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication_type)
    error_message = "storage_replication_type must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "key_vault_allowed_ip_ranges" {
  description = "Public IP ranges (CIDR) allowed through the Key Vault firewall, e.g. an admin's address to add a secret. Azure Databricks reaches the vault as a trusted service."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for range in var.key_vault_allowed_ip_ranges : can(cidrhost(range, 0))])
    error_message = "Each entry of key_vault_allowed_ip_ranges must be a CIDR range such as 203.0.113.7/32."
  }
}

variable "databricks_account_id" {
  description = "Azure Databricks account id (Account console > user menu)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.databricks_account_id))
    error_message = "databricks_account_id must be a lowercase UUID."
  }
}

variable "github_repository" {
  description = "The GitHub repository (owner/name) whose workflows federate to the Entra applications."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be owner/name, e.g. my-org/dbxml."
  }
}

variable "terraform_state" {
  description = "Where the remote state lives (the values of backend.hcl), published as GitHub vars TF_STATE_* for the plan job."
  type = object({
    resource_group_name  = string
    storage_account_name = string
    container_name       = string
    key                  = string
  })

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.terraform_state.storage_account_name)) && length(var.terraform_state.key) > 0
    error_message = "terraform_state.storage_account_name must be 3-24 lowercase letters and digits, and key must not be empty."
  }
}

variable "tags" {
  description = "Tags on every Azure resource."
  type        = map(string)
  default = {
    project    = "dbxml"
    managed_by = "terraform"
  }
}
