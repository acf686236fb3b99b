variable "nodes" {
  description = "Node names."
  type        = list(string)
}

variable "pod" {
  description = "The pod id."
  type        = string
}

variable "jurisdiction" {
  description = "The pod's jurisdiction."
  type        = string
}

variable "cloud" {
  description = "The cloud (aws, gcp, azure): the node's `cloud` label."
  type        = string
}

variable "region" {
  description = "The region: the node's `region` label."
  type        = string
}

variable "tee_backend" {
  description = "The node's [tee] backend: snp, tdx, azure or auto."
  type        = string
}

variable "p2p_port" {
  description = "libp2p (TCP) port."
  type        = number
}

variable "api_port" {
  description = "HTTPS API port."
  type        = number
}

variable "peers" {
  description = "The other nodes' libp2p addresses."
  type        = list(string)
}

variable "genesis_b64" {
  description = "The pod's genesis (canonical CBOR), base64."
  type        = string
}

variable "sigil_url" {
  description = "Where the VM downloads the sigil binary."
  type        = string
}

variable "sigil_sha256" {
  description = "The binary's SHA-256 (hex)."
  type        = string
}
