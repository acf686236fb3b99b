variable "aws_region" {
  description = "AWS region with SEV-SNP instances in the jurisdiction (e.g. eu-west-1)."
  type        = string
  default     = "eu-west-1"
}

variable "aws_ami_id" {
  description = "An SNP-capable AMI (UEFI boot) in aws_region."
  type        = string
}

variable "aws_subnet_id" {
  description = "The AWS subnet of node-0."
  type        = string
}

variable "gcp_project" {
  description = "The GCP project."
  type        = string
}

variable "gcp_region" {
  description = "GCP region in the jurisdiction (e.g. europe-west4)."
  type        = string
  default     = "europe-west4"
}

variable "gcp_zone" {
  description = "A zone of gcp_region offering N2D SEV-SNP and C3 TDX Confidential VMs."
  type        = string
  default     = "europe-west4-a"
}

variable "gcp_network" {
  description = "The GCP VPC network."
  type        = string
}

variable "gcp_subnetwork" {
  description = "The GCP subnetwork of node-1 and node-2."
  type        = string
}

variable "azure_subscription_id" {
  description = "The Azure subscription."
  type        = string
}

variable "azure_location" {
  description = "Azure region in the jurisdiction offering DCasv5 (e.g. westeurope)."
  type        = string
  default     = "westeurope"
}

variable "azure_resource_group_name" {
  description = "The Azure resource group of node-3."
  type        = string
}

variable "azure_subnet_id" {
  description = "The Azure subnet of node-3 (its network security group must open the p2p and API ports)."
  type        = string
}

variable "azure_admin_ssh_public_key" {
  description = "SSH public key of node-3's admin user."
  type        = string
}

variable "allowed_cidrs" {
  description = "The networks that may reach the nodes' p2p and API ports: the other nodes' and the callers'."
  type        = list(string)
}

variable "genesis_b64" {
  description = "The pod's genesis (canonical CBOR), base64; empty on the first apply (see main.tf)."
  type        = string
  default     = ""
}

variable "peers" {
  description = "Every node's libp2p address (/ip4/ADDR/tcp/27000/p2p/PEER_ID)."
  type        = list(string)
  default     = []
}

variable "sigil_url" {
  description = "Where the VMs download the sigil binary (a release artifact)."
  type        = string
}

variable "sigil_sha256" {
  description = "The binary's SHA-256 (hex)."
  type        = string
}
