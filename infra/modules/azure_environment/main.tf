# One environment's Azure side: its container, the access connector whose managed identity
# Unity Catalog uses to reach that container (and nothing else), the premium workspace and
# the Key Vault behind the workspace's `dbxml` secret scope.

resource "azurerm_storage_container" "environment" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging needs diagnostic settings and a Log Analytics workspace this template does not create; Unity Catalog audit logs record data access.
  name                  = var.container_name
  storage_account_id    = var.storage_account_id
  container_access_type = "private"
}

resource "azurerm_databricks_access_connector" "environment" {
  name                = "${var.name_prefix}-${var.environment}-connector"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags

  identity {
    type = "SystemAssigned"
  }
}

# Least privilege: the connector can read and write its own environment's container only.
resource "azurerm_role_assignment" "connector_container" {
  scope                = azurerm_storage_container.environment.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_databricks_access_connector.environment.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_databricks_workspace" "environment" {
  #checkov:skip=CKV2_AZURE_48:Microsoft-managed keys with infrastructure (double) encryption on; a customer-managed DBFS key needs a two-step apply and a key lifecycle this project does not need (nothing is kept in DBFS root).
  #checkov:skip=CKV_AZURE_158:VNet injection (and private endpoints) need a network design this template leaves to the adopter; secure cluster connectivity (no public IPs) is on.
  name                              = "${var.name_prefix}-${var.environment}"
  resource_group_name               = var.resource_group_name
  location                          = var.location
  sku                               = "premium"
  managed_resource_group_name       = "${var.resource_group_name}-${var.environment}-managed"
  infrastructure_encryption_enabled = true
  public_network_access_enabled     = true
  tags                              = merge(var.tags, { environment = var.environment })

  custom_parameters {
    no_public_ip = true
  }
}

resource "azurerm_key_vault" "environment" {
  #checkov:skip=CKV_AZURE_189:Public network access stays on so an admin can add a secret from an allowed IP; the firewall denies everything else and Azure Databricks enters as a trusted service.
  #checkov:skip=CKV2_AZURE_32:Private endpoints need a VNet this template does not create (README "Hardening").
  name                          = "${var.name_prefix}-${var.environment}-kv"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  tenant_id                     = var.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true
  tags                          = merge(var.tags, { environment = var.environment })

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = var.key_vault_allowed_ip_ranges
  }
}

# A Key Vault-backed secret scope reads secrets as the AzureDatabricks application.
resource "azurerm_role_assignment" "azure_databricks_secrets_user" {
  scope                = azurerm_key_vault.environment.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = var.azure_databricks_object_id
  principal_type       = "ServicePrincipal"
}
