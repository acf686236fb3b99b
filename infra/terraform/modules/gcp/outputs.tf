output "nodes" {
  description = "Each node: its private address, its TEE and the cloud."
  value = {
    for name, i in google_compute_instance.node : name => {
      address = i.network_interface[0].network_ip
      tee     = var.tee == "tdx" ? "tdx" : "sev-snp"
      cloud   = "gcp"
    }
  }
}
