variable "github_repository" {
  description = "The GitHub repository (owner/name) whose environments and Actions variables this stack manages."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be owner/name, e.g. my-org/dbxml."
  }
}

variable "platform_state" {
  description = "Where the platform stack (infra/) keeps its state: this stack reads its github_variables output."
  type = object({
    resource_group_name  = string
    storage_account_name = string
    container_name       = string
    key                  = string
  })

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.platform_state.storage_account_name)) && length(var.platform_state.key) > 0
    error_message = "platform_state.storage_account_name must be 3-24 lowercase letters and digits, and key must not be empty."
  }
}

variable "prod_reviewers" {
  description = "GitHub usernames who approve a prod deployment (1-6)."
  type        = list(string)

  validation {
    condition     = length(var.prod_reviewers) >= 1 && length(var.prod_reviewers) <= 6 && alltrue([for user in var.prod_reviewers : can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$", user))])
    error_message = "prod_reviewers must be 1 to 6 GitHub usernames (an environment without reviewers would not gate anything)."
  }
}

variable "infra_reviewers" {
  description = "GitHub usernames who approve a Terraform plan with the dbxml-infra identity (1-6)."
  type        = list(string)

  validation {
    condition     = length(var.infra_reviewers) >= 1 && length(var.infra_reviewers) <= 6 && alltrue([for user in var.infra_reviewers : can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$", user))])
    error_message = "infra_reviewers must be 1 to 6 GitHub usernames (an environment without reviewers would not gate anything)."
  }
}
