# A root of its own, with its own state: managing GitHub needs a repository admin's token,
# which the platform's plan job must never hold, and keeping these resources out of the
# platform state means that plan never proposes to destroy them.
terraform {
  required_version = ">= 1.6"

  required_providers {
    github = {
      source = "integrations/github"
      # 6.4 added tag_pattern to github_repository_environment_deployment_policy (prod: v* tags)
      version = "~> 6.4"
    }
  }

  # Same storage as the platform state, another key (see backend.hcl.example).
  backend "azurerm" {}
}

provider "github" {
  # The token comes from GITHUB_TOKEN (an admin of the repository, e.g. `gh auth token`).
  owner = split("/", var.github_repository)[0]
}
