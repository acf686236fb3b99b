output "nodes" {
  description = "Each node: its private address, its TEE and the cloud."
  value = {
    for name, i in azurerm_linux_virtual_machine.node : name => {
      address = i.private_ip_address
      tee     = var.tee == "tdx" ? "tdx" : "sev-snp"
      cloud   = "azure"
    }
  }
}
