# The cloud-init user data of each node (infra/cloud-init/sigil-node.yaml.tftpl with the systemd unit inside), the
# same for every cloud: the cloud modules pass their node inputs and hand each VM its rendered text.
terraform {
  required_version = ">= 1.5"
}

output "user_data" {
  description = "Node name → its cloud-init user data (#cloud-config text)."
  value = {
    for name in var.nodes : name => templatefile("${path.module}/../../../cloud-init/sigil-node.yaml.tftpl", {
      node_name    = name
      pod          = var.pod
      jurisdiction = var.jurisdiction
      cloud        = var.cloud
      region       = var.region
      tee_backend  = var.tee_backend
      p2p_port     = var.p2p_port
      api_port     = var.api_port
      peers        = join(", ", [for p in var.peers : "\"${p}\""])
      genesis_b64  = var.genesis_b64
      sigil_url    = var.sigil_url
      sigil_sha256 = var.sigil_sha256
      unit         = file("${path.module}/../../../systemd/sigil-node.service")
    })
  }
}
