terraform {
  required_providers {
    github = {
      source = "integrations/github"
    }
  }
}
