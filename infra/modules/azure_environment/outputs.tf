output "workspace_url" {
  description = "https:// URL of the workspace (DATABRICKS_HOST)."
  value       = "https://${azurerm_databricks_workspace.environment.workspace_url}"
}

output "workspace_id" {
  description = "Numeric Databricks workspace id (account-level APIs)."
  value       = azurerm_databricks_workspace.environment.workspace_id
}

output "workspace_resource_id" {
  description = "Azure resource id of the workspace (the workspace provider's azure_workspace_resource_id)."
  value       = azurerm_databricks_workspace.environment.id
}

output "access_connector_id" {
  description = "Azure resource id of the access connector (the storage credential's identity)."
  value       = azurerm_databricks_access_connector.environment.id
}

output "key_vault_id" {
  description = "Azure resource id of the environment's Key Vault."
  value       = azurerm_key_vault.environment.id
}

output "key_vault_uri" {
  description = "Vault URI (the secret scope's dns_name)."
  value       = azurerm_key_vault.environment.vault_uri
}
