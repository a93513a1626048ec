# The GitHub side of delivery: environments that gate deployments and the Actions variables
# (ids and hosts, not secrets) the workflows read, taken from the platform stack's outputs.

data "terraform_remote_state" "platform" {
  backend = "azurerm"
  config = {
    resource_group_name  = var.platform_state.resource_group_name
    storage_account_name = var.platform_state.storage_account_name
    container_name       = var.platform_state.container_name
    key                  = var.platform_state.key
    use_azuread_auth     = true
  }
}

module "github" {
  source = "../modules/github"

  repository            = split("/", var.github_repository)[1]
  prod_reviewers        = var.prod_reviewers
  infra_reviewers       = var.infra_reviewers
  repository_variables  = data.terraform_remote_state.platform.outputs.github_variables.repository
  environment_variables = data.terraform_remote_state.platform.outputs.github_variables.environments
}
