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

variable "location" {
  description = "Azure region (e.g. westeurope, northeurope). DCasv5/ECasv5 (SEV-SNP) and DCesv5 (TDX) are offered in a subset: check Azure's list."
  type        = string
}

variable "resource_group_name" {
  description = "The resource group the nodes go into."
  type        = string
}

variable "subnet_id" {
  description = "The subnet the nodes' network interfaces join."
  type        = string
}

variable "tee" {
  description = "\"snp\": AMD SEV-SNP (DCasv5/ECasv5); \"tdx\": Intel TDX (DCesv5). Both are behind Azure's vTPM paravisor."
  type        = string
  default     = "snp"
  validation {
    condition     = contains(["snp", "tdx"], var.tee)
    error_message = "tee is \"snp\" or \"tdx\"."
  }
}

variable "size" {
  description = "VM size. Empty: Standard_DC4as_v5 for SEV-SNP, Standard_DC4es_v5 for TDX."
  type        = string
  default     = ""
}

variable "admin_ssh_public_key" {
  description = "The SSH public key of the VMs' admin user (Azure requires one)."
  type        = string
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
