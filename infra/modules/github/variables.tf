variable "repository" {
  description = "Repository name (without the owner; the provider's owner is set at the root)."
  type        = string
}

variable "prod_reviewers" {
  description = "GitHub usernames who approve prod deployments."
  type        = list(string)
}

variable "infra_reviewers" {
  description = "GitHub usernames who approve a plan with the dbxml-infra identity."
  type        = list(string)
}

variable "repository_variables" {
  description = "Repository-level Actions variables (name => value)."
  type        = map(string)
}

variable "environment_variables" {
  description = "Actions variables per GitHub environment (environment => name => value)."
  type        = map(map(string))
}
