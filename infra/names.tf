# Every name the bundle (databricks.yml) and dbxml.toml depend on, kept as plain data so
# tests/test_infra.py can read it without evaluating Terraform expressions.

variable "environments" {
  description = <<-EOT
    The three environments, each with its own workspace, container, catalog and Key Vault.
    deploy_principal is the Entra application that deploys and owns the environment (null for
    dev: developers deploy dev as themselves). readable_from_dev binds the catalog READ_ONLY to
    the dev workspace so data scientists can read it from there.
  EOT
  type = map(object({
    catalog           = string
    container         = string
    deploy_principal  = optional(string)
    readable_from_dev = bool
  }))
  default = {
    dev = {
      catalog           = "dbxml_dev"
      container         = "dev"
      deploy_principal  = null
      readable_from_dev = false
    }
    staging = {
      catalog           = "dbxml_staging"
      container         = "staging"
      deploy_principal  = "dbxml-deploy-staging"
      readable_from_dev = true
    }
    prod = {
      catalog           = "dbxml_prod"
      container         = "prod"
      deploy_principal  = "dbxml-deploy-prod"
      readable_from_dev = true
    }
  }

  validation {
    # Each environment has its own provider alias in providers.tf, so the set is fixed.
    condition     = toset(keys(var.environments)) == toset(["dev", "staging", "prod"])
    error_message = "environments must have exactly the keys dev, staging and prod."
  }
  validation {
    condition     = alltrue([for env in values(var.environments) : can(regex("^[a-z][a-z0-9_]{0,254}$", env.catalog))])
    error_message = "Each catalog name must be lowercase letters, digits and underscores, starting with a letter."
  }
  validation {
    condition     = alltrue([for env in values(var.environments) : can(regex("^[a-z0-9](?:[a-z0-9]|-(?:[a-z0-9])){2,62}$", env.container))])
    error_message = "Each container name must be 3-63 lowercase letters, digits and single hyphens."
  }
  validation {
    condition     = var.environments["dev"].deploy_principal == null && var.environments["staging"].deploy_principal != null && var.environments["prod"].deploy_principal != null
    error_message = "dev has no deploy principal; staging and prod must name one."
  }
}

variable "schema" {
  description = "The schema Terraform creates in every catalog (databricks.yml variable `schema`)."
  type        = string
  default     = "flights"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,254}$", var.schema))
    error_message = "schema must be lowercase letters, digits and underscores, starting with a letter."
  }
}

variable "groups" {
  description = "Databricks account groups, keyed by the databricks.yml variable that names them."
  type        = map(string)
  default = {
    data_engineers_group  = "dbxml-data-engineers"
    data_scientists_group = "dbxml-data-scientists"
    analysts_group        = "dbxml-analysts"
  }

  validation {
    condition     = toset(keys(var.groups)) == toset(["data_engineers_group", "data_scientists_group", "analysts_group"])
    error_message = "groups must have exactly the keys data_engineers_group, data_scientists_group and analysts_group."
  }
}

locals {
  # abfss://<container>@<storage account>.dfs.core.windows.net/dbxml: each catalog's managed
  # storage root, the same string as dbxml.toml's storage_root for dev, staging and prod.
  storage_root_format = "abfss://%s@%s.dfs.core.windows.net/dbxml"

  # Entra applications (also Databricks account service principals), keyed by display name.
  # github_subject: the part after repo:<owner>/<name>: of the GitHub OIDC token they accept.
  principals = {
    "dbxml-deploy-staging" = {
      github_subject = "environment:staging"
      workspaces     = ["staging"]
      description    = "Deploys and runs the bundle in staging; owns the staging catalog."
    }
    "dbxml-deploy-prod" = {
      github_subject = "environment:prod"
      workspaces     = ["prod"]
      description    = "Deploys and runs the bundle in prod; owns the prod catalog."
    }
    "dbxml-ci" = {
      github_subject = "pull_request"
      workspaces     = ["staging", "prod"]
      description    = "Read-only: bundle validate on pull requests."
    }
    "dbxml-infra" = {
      github_subject = "environment:infra"
      workspaces     = []
      description    = "Terraform plan in CI, behind the infra environment's required reviewers."
    }
  }

  # Which workspaces each group may log in to (USER).
  group_workspaces = {
    data_engineers_group  = ["dev", "staging", "prod"]
    data_scientists_group = ["dev", "staging", "prod"]
    analysts_group        = ["prod"]
  }

  # Least-privilege catalog grants (they inherit to the schema and everything in it).
  privileges = {
    write_dev = [
      "USE_CATALOG", "USE_SCHEMA", "SELECT", "MODIFY", "CREATE_TABLE", "CREATE_FUNCTION",
      "CREATE_MODEL", "CREATE_VOLUME", "READ_VOLUME", "WRITE_VOLUME",
    ]
    data_scientists_read = ["USE_CATALOG", "USE_SCHEMA", "SELECT", "READ_VOLUME", "EXECUTE"]
    # The raw volume's WRITE_VOLUME for data engineers is granted by the bundle.
    data_engineers_read = ["USE_CATALOG", "USE_SCHEMA", "SELECT", "READ_VOLUME"]
    analysts_read       = ["USE_CATALOG", "USE_SCHEMA", "SELECT"]
    ci_browse           = ["USE_CATALOG", "BROWSE"]
  }
}
