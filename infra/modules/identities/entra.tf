# Entra applications that GitHub Actions signs in as through OIDC: no client secret exists.

locals {
  github_issuer   = "https://token.actions.githubusercontent.com"
  github_audience = "api://AzureADTokenExchange"
}

data "azuread_client_config" "current" {}

resource "azuread_application" "principal" {
  for_each = var.principals

  display_name = each.key
  description  = each.value.description
  owners       = [data.azuread_client_config.current.object_id]
}

resource "azuread_service_principal" "principal" {
  for_each = var.principals

  client_id = azuread_application.principal[each.key].client_id
  owners    = [data.azuread_client_config.current.object_id]
}

resource "azuread_application_federated_identity_credential" "github" {
  #checkov:skip=CKV_AZURE_249:False positive: checkov cannot resolve var.github_repository; the subject is an exact repo:<owner>/<name>:<claim> (validated owner/name, no wildcard) of one environment or pull_request.
  for_each = var.principals

  application_id = azuread_application.principal[each.key].id
  display_name   = "github-${replace(each.value.github_subject, ":", "-")}"
  description    = "GitHub Actions of ${var.github_repository} (${each.value.github_subject})"
  issuer         = local.github_issuer
  audiences      = [local.github_audience]
  subject        = "repo:${var.github_repository}:${each.value.github_subject}"
}

# terraform plan in CI reads every Azure resource of the project; it changes none.
resource "azurerm_role_assignment" "plan_reader" {
  scope                = var.resource_group_id
  role_definition_name = "Reader"
  principal_id         = azuread_service_principal.principal[var.account_admin_name].object_id
  principal_type       = "ServicePrincipal"
}
