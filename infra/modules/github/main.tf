# GitHub environments that gate deployments, and the Actions variables (ids, not secrets)
# the workflows read. Names the workflows depend on are listed here as plain data.

locals {
  # Every Actions variable this module writes (tests/test_infra.py checks the workflows read no other).
  repository_variable_names = [
    "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "DATABRICKS_ACCOUNT_ID", "AZURE_CI_CLIENT_ID", "AZURE_STAGING_CLIENT_ID",
    "AZURE_PROD_CLIENT_ID", "DATABRICKS_STAGING_HOST", "DATABRICKS_PROD_HOST",
    "TF_STATE_RESOURCE_GROUP", "TF_STATE_STORAGE_ACCOUNT", "TF_STATE_CONTAINER", "TF_STATE_KEY",
  ]
  environment_variable_names = {
    staging = ["AZURE_CLIENT_ID", "DATABRICKS_HOST"]
    prod    = ["AZURE_CLIENT_ID", "DATABRICKS_HOST"]
    infra   = ["AZURE_CLIENT_ID"]
  }

  environment_variables = merge([
    for environment, names in local.environment_variable_names : {
      for name in names : "${environment}/${name}" => {
        environment = environment
        name        = name
        value       = var.environment_variables[environment][name]
      }
    }
  ]...)
}

data "github_user" "prod_reviewer" {
  for_each = toset(var.prod_reviewers)
  username = each.value
}

data "github_user" "infra_reviewer" {
  for_each = toset(var.infra_reviewers)
  username = each.value
}

# staging: only main deploys (the merge-to-main workflow).
resource "github_repository_environment" "staging" {
  repository  = var.repository
  environment = "staging"

  deployment_branch_policy {
    protected_branches     = false
    custom_branch_policies = true
  }
}

resource "github_repository_environment_deployment_policy" "staging_main" {
  repository     = var.repository
  environment    = github_repository_environment.staging.environment
  branch_pattern = "main"
}

# prod: only v* tags, and a reviewer other than the one who pushed the tag approves.
resource "github_repository_environment" "prod" {
  repository          = var.repository
  environment         = "prod"
  prevent_self_review = true
  can_admins_bypass   = false

  reviewers {
    users = [for user in data.github_user.prod_reviewer : tonumber(user.id)]
  }

  deployment_branch_policy {
    protected_branches     = false
    custom_branch_policies = true
  }

  lifecycle {
    precondition {
      condition     = length(var.prod_reviewers) > 0
      error_message = "prod needs at least one reviewer: set prod_reviewers."
    }
  }
}

resource "github_repository_environment_deployment_policy" "prod_tags" {
  repository  = var.repository
  environment = github_repository_environment.prod.environment
  tag_pattern = "v*"
}

# infra: a plan with Terraform's identity runs on pull requests (no branch policy: pull
# request refs would not match one); a reviewer approves each run.
resource "github_repository_environment" "infra" {
  repository          = var.repository
  environment         = "infra"
  prevent_self_review = true
  can_admins_bypass   = false

  reviewers {
    users = [for user in data.github_user.infra_reviewer : tonumber(user.id)]
  }

  lifecycle {
    precondition {
      condition     = length(var.infra_reviewers) > 0
      error_message = "infra needs at least one reviewer: set infra_reviewers."
    }
  }
}

resource "github_actions_variable" "repository" {
  for_each = toset(local.repository_variable_names)

  repository    = var.repository
  variable_name = each.value
  value         = var.repository_variables[each.value]
}

resource "github_actions_environment_variable" "environment" {
  for_each = local.environment_variables

  repository    = var.repository
  environment   = each.value.environment
  variable_name = each.value.name
  value         = each.value.value

  depends_on = [
    github_repository_environment.staging,
    github_repository_environment.prod,
    github_repository_environment.infra,
  ]
}
