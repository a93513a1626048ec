output "client_ids" {
  description = "Application (client) id by display name; also the Databricks service principal's application_id."
  value       = { for name, app in azuread_application.principal : name => app.client_id }
}

output "object_ids" {
  description = "Service principal object id by display name (Azure role assignments)."
  value       = { for name, sp in azuread_service_principal.principal : name => sp.object_id }
}

output "group_names" {
  description = "Account group display names, keyed like the input."
  value       = { for key, group in databricks_group.group : key => group.display_name }
}
