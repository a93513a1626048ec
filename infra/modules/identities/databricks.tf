# The account side: service principals and groups exist once per account; each is given
# USER on the workspaces it needs, and every workspace is attached to the region's metastore.

resource "databricks_service_principal" "principal" {
  for_each = var.principals

  application_id = azuread_application.principal[each.key].client_id
  display_name   = each.key
}

# Account APIs have no read-only role, so the plan identity must be an account admin;
# the infra GitHub environment's required reviewers gate every use of it.
resource "databricks_service_principal_role" "plan_account_admin" {
  service_principal_id = databricks_service_principal.principal[var.account_admin_name].id
  role                 = "account_admin"
}

resource "databricks_group" "group" {
  for_each = var.groups

  display_name = each.value
}

locals {
  principal_assignments = merge([
    for name, principal in var.principals : {
      for environment in principal.workspaces : "${name}/${environment}" => {
        principal_id = databricks_service_principal.principal[name].id
        workspace_id = var.workspace_ids[environment]
      }
    }
  ]...)
  group_assignments = merge([
    for key, environments in var.group_workspaces : {
      for environment in environments : "${key}/${environment}" => {
        principal_id = databricks_group.group[key].id
        workspace_id = var.workspace_ids[environment]
      }
    }
  ]...)
}

resource "databricks_mws_permission_assignment" "workspace_user" {
  for_each = merge(local.principal_assignments, local.group_assignments)

  workspace_id = each.value.workspace_id
  principal_id = each.value.principal_id
  permissions  = ["USER"]

  # Permission assignment APIs only work on an identity-federated workspace, i.e. one
  # attached to a Unity Catalog metastore.
  depends_on = [databricks_metastore_assignment.workspace]
}

# Read, never create: one metastore per region is created once by the account admin.
data "databricks_metastore" "region" {
  region = var.location
}

resource "databricks_metastore_assignment" "workspace" {
  for_each = var.workspace_ids

  workspace_id = each.value
  metastore_id = data.databricks_metastore.region.id
}
