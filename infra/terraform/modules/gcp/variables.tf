variable "pod" {
  description = "The pod id (the genesis's pod): a label on every resource and in the node's [labels]."
  type        = string
}

variable "jurisdiction" {
  description = "The pod's jurisdiction (e.g. \"EU\"): where its data may live. Choose the region to match."
  type        = string
}

variable "nodes" {
  description = "Node names, one VM each (e.g. [\"node-0\"])."
  type        = list(string)
}

variable "region" {
  description = "GCP region (e.g. europe-west4). Confidential VMs with SEV-SNP (N2D) and TDX (C3) are zonal offerings: check Google's list."
  type        = string
}

variable "zone" {
  description = "The zone the nodes run in (e.g. europe-west4-a)."
  type        = string
}

variable "tee" {
  description = "\"snp\": AMD SEV-SNP on N2D (min CPU platform AMD Milan); \"tdx\": Intel TDX on C3."
  type        = string
  default     = "snp"
  validation {
    condition     = contains(["snp", "tdx"], var.tee)
    error_message = "tee is \"snp\" or \"tdx\"."
  }
}

variable "machine_type" {
  description = "Machine type: n2d-* for SEV-SNP, c3-* for TDX. Empty: n2d-standard-4 or c3-standard-4."
  type        = string
  default     = ""
}

variable "image" {
  description = "A boot image that supports the chosen Confidential VM type (e.g. ubuntu-os-cloud/ubuntu-2404-lts-amd64)."
  type        = string
  default     = "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
}

variable "network" {
  description = "The VPC network (for the firewall rule)."
  type        = string
}

variable "subnetwork" {
  description = "The subnetwork the nodes run in."
  type        = string
}

variable "allowed_cidrs" {
  description = "Who may reach the nodes' p2p and API ports."
  type        = list(string)
}

variable "genesis_b64" {
  description = "The pod's genesis entry (canonical CBOR), base64."
  type        = string
}

variable "peers" {
  description = "The other nodes' libp2p addresses (/ip4/.../tcp/.../p2p/...), for [p2p] peers."
  type        = list(string)
  default     = []
}

variable "sigil_url" {
  description = "Where each VM downloads the sigil binary."
  type        = string
}

variable "sigil_sha256" {
  description = "The binary's SHA-256 (hex): a download that does not match is not installed."
  type        = string
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.sigil_sha256))
    error_message = "sigil_sha256 is 64 lowercase hex digits."
  }
}

variable "p2p_port" {
  description = "libp2p (TCP) port."
  type        = number
  default     = 27000
}

variable "api_port" {
  description = "HTTPS API port."
  type        = number
  default     = 8443
}
