output "catalog" {
  description = "Name of the catalog."
  value       = databricks_catalog.environment.name
}

output "schema" {
  description = "Full name of the schema (catalog.schema)."
  value       = databricks_schema.environment.id
}

output "storage_root" {
  description = "Managed storage root of the catalog."
  value       = databricks_catalog.environment.storage_root
}
