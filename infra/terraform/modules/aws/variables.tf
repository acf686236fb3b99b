variable "pod" {
  description = "The pod id (the genesis's pod): a label on every resource and in the node's [labels]."
  type        = string
}

variable "jurisdiction" {
  description = "The pod's jurisdiction (e.g. \"EU\"): where its data may live. Choose the region to match."
  type        = string
}

variable "region" {
  description = "AWS region. SEV-SNP instances are offered in us-east-2 and eu-west-1 (check AWS's current list)."
  type        = string
}

variable "nodes" {
  description = "Node names, one EC2 instance each (e.g. [\"node-0\"])."
  type        = list(string)
}

variable "instance_type" {
  description = "An instance type with AMD SEV-SNP: m6a, c6a or r6a (e.g. m6a.large)."
  type        = string
  default     = "m6a.large"
  validation {
    condition     = can(regex("^(m6a|c6a|r6a)\\.", var.instance_type))
    error_message = "AMD SEV-SNP is offered on m6a, c6a and r6a instances."
  }
}

variable "ami_id" {
  description = "An AMI with UEFI boot and an SNP guest kernel (Amazon Linux 2023 or Ubuntu 24.04 with boot mode uefi)."
  type        = string
}

variable "subnet_id" {
  description = "The subnet the nodes run in."
  type        = string
}

variable "allowed_cidrs" {
  description = "Who may reach the nodes' p2p and API ports (the other nodes' and the callers' networks)."
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
