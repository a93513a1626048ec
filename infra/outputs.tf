locals {
  workspace_hosts = { for name, env in module.azure_environment : name => env.workspace_url }

  github_repository_variables = {
    AZURE_TENANT_ID          = data.azurerm_client_config.current.tenant_id
    AZURE_SUBSCRIPTION_ID    = var.subscription_id
    DATABRICKS_ACCOUNT_ID    = var.databricks_account_id
    AZURE_CI_CLIENT_ID       = local.ci_client_id
    AZURE_STAGING_CLIENT_ID  = local.deploy_client_id["staging"]
    AZURE_PROD_CLIENT_ID     = local.deploy_client_id["prod"]
    DATABRICKS_STAGING_HOST  = local.workspace_hosts["staging"]
    DATABRICKS_PROD_HOST     = local.workspace_hosts["prod"]
    TF_STATE_RESOURCE_GROUP  = var.terraform_state.resource_group_name
    TF_STATE_STORAGE_ACCOUNT = var.terraform_state.storage_account_name
    TF_STATE_CONTAINER       = var.terraform_state.container_name
    TF_STATE_KEY             = var.terraform_state.key
  }

  github_environment_variables = {
    staging = {
      AZURE_CLIENT_ID = local.deploy_client_id["staging"]
      DATABRICKS_HOST = local.workspace_hosts["staging"]
    }
    prod = {
      AZURE_CLIENT_ID = local.deploy_client_id["prod"]
      DATABRICKS_HOST = local.workspace_hosts["prod"]
    }
    infra = {
      AZURE_CLIENT_ID = module.identities.client_ids["dbxml-infra"]
    }
  }
}

output "bundle_targets" {
  description = "What each bundle target needs: workspace_host feeds DATABRICKS_HOST, every other attribute is a databricks.yml variable (BUNDLE_VAR_<name>)."
  value = {
    for name, env in var.environments : name => {
      workspace_host                   = local.workspace_hosts[name]
      catalog                          = env.catalog
      schema                           = var.schema
      service_principal_application_id = local.deploy_client_id[name]
      data_engineers_group             = var.groups.data_engineers_group
      data_scientists_group            = var.groups.data_scientists_group
      analysts_group                   = var.groups.analysts_group
    }
  }
}

output "github_variables" {
  description = "The GitHub Actions variables the workflows read (infra/github/ writes them from this output)."
  value = {
    repository   = local.github_repository_variables
    environments = local.github_environment_variables
  }
}

output "workspace_urls" {
  description = "Workspace URL per environment."
  value       = local.workspace_hosts
}

output "client_ids" {
  description = "Application (client) id of each Entra application, by display name."
  value       = module.identities.client_ids
}
