variable "github_repository" {
  description = "owner/name of the repository whose workflows may sign in as these applications."
  type        = string
}

variable "principals" {
  description = "Entra applications by display name: the GitHub OIDC subject they accept (after repo:<owner>/<name>:) and the workspaces they may use."
  type = map(object({
    github_subject = string
    workspaces     = list(string)
    description    = string
  }))
}

variable "groups" {
  description = "Account group display names, keyed by their databricks.yml variable."
  type        = map(string)
}

variable "group_workspaces" {
  description = "Workspaces (environment names) each group may use, keyed like groups."
  type        = map(list(string))
}

variable "workspace_ids" {
  description = "Numeric Databricks workspace id per environment."
  type        = map(string)
}

variable "location" {
  description = "Azure region; the Unity Catalog metastore of this region is looked up, never created."
  type        = string
}

variable "resource_group_id" {
  description = "Resource group the Terraform identity may read (plan)."
  type        = string
}

variable "account_admin_name" {
  description = "Display name of the principal that runs terraform plan in CI (needs account admin to read account-level objects)."
  type        = string
}
