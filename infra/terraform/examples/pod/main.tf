# A 4-node pod across three clouds, in one jurisdiction (the EU): one AWS SEV-SNP node, a GCP SEV-SNP and a GCP
# TDX node, and one Azure SEV-SNP node. Any single node may fail (4 = 3f + 1, f = 1).
#
#   terraform init && terraform apply -var-file=pod.tfvars
#
# The genesis names the nodes' keys and evidence, which exist only once the VMs have booted: bring the VMs up,
# collect each node's public key and evidence (the cloud-init log prints the key; `sigil attest collect` gives the
# evidence), build the genesis, then apply again with genesis_b64 and peers set. docs/infra.md walks through it.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws     = { source = "hashicorp/aws", version = ">= 5.30" }
    google  = { source = "hashicorp/google", version = ">= 6.0" }
    azurerm = { source = "hashicorp/azurerm", version = ">= 4.0" }
  }
}

provider "aws" {
  region = var.aws_region
}

provider "google" {
  project = var.gcp_project
  region  = var.gcp_region
}

provider "azurerm" {
  features {}
  subscription_id = var.azure_subscription_id
}

locals {
  pod          = "eu"
  jurisdiction = "EU"
}

module "aws" {
  source        = "../../modules/aws"
  pod           = local.pod
  jurisdiction  = local.jurisdiction
  region        = var.aws_region
  nodes         = ["node-0"]
  ami_id        = var.aws_ami_id
  subnet_id     = var.aws_subnet_id
  allowed_cidrs = var.allowed_cidrs
  genesis_b64   = var.genesis_b64
  peers         = var.peers
  sigil_url     = var.sigil_url
  sigil_sha256  = var.sigil_sha256
}

# One GCP module instance per TEE type: node-1 on SEV-SNP (N2D), node-2 on TDX (C3).
module "gcp" {
  for_each      = { snp = ["node-1"], tdx = ["node-2"] }
  source        = "../../modules/gcp"
  pod           = local.pod
  jurisdiction  = local.jurisdiction
  region        = var.gcp_region
  zone          = var.gcp_zone
  tee           = each.key
  nodes         = each.value
  network       = var.gcp_network
  subnetwork    = var.gcp_subnetwork
  allowed_cidrs = var.allowed_cidrs
  genesis_b64   = var.genesis_b64
  peers         = var.peers
  sigil_url     = var.sigil_url
  sigil_sha256  = var.sigil_sha256
}

module "azure" {
  source               = "../../modules/azure"
  pod                  = local.pod
  jurisdiction         = local.jurisdiction
  location             = var.azure_location
  resource_group_name  = var.azure_resource_group_name
  subnet_id            = var.azure_subnet_id
  tee                  = "snp"
  nodes                = ["node-3"]
  admin_ssh_public_key = var.azure_admin_ssh_public_key
  genesis_b64          = var.genesis_b64
  peers                = var.peers
  sigil_url            = var.sigil_url
  sigil_sha256         = var.sigil_sha256
}

output "nodes" {
  description = "Every node of the pod: address, TEE, cloud."
  value       = merge(module.aws.nodes, module.gcp["snp"].nodes, module.gcp["tdx"].nodes, module.azure.nodes)
}
