# Sigil nodes on Azure confidential VMs: AMD SEV-SNP (DCasv5/ECasv5) or Intel TDX (DCesv5). Azure runs the guest
# behind its paravisor: the hardware report is not at /dev/sev-guest or configfs-tsm but wrapped in an HCL report
# in the vTPM (NV index 0x01400001). The node's `azure` backend writes its REPORT_DATA to the vTPM's user-data
# index, reads the HCL report and completes it from IMDS (docs/infra.md); it was tested against swtpm, not on Azure.
terraform {
  required_version = ">= 1.5"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.0"
    }
  }
}

locals {
  size = var.size != "" ? var.size : (var.tee == "tdx" ? "Standard_DC4es_v5" : "Standard_DC4as_v5")
  tags = { pod = var.pod, jurisdiction = var.jurisdiction, tee = var.tee, app = "sigil" }
}

resource "azurerm_network_interface" "node" {
  for_each            = toset(var.nodes)
  name                = "sigil-${var.pod}-${each.key}"
  location            = var.location
  resource_group_name = var.resource_group_name
  ip_configuration {
    name                          = "internal"
    subnet_id                     = var.subnet_id
    private_ip_address_allocation = "Dynamic"
  }
  tags = local.tags
}

module "node_init" {
  source       = "../node-init"
  nodes        = var.nodes
  pod          = var.pod
  jurisdiction = var.jurisdiction
  cloud        = "azure"
  region       = var.location
  tee_backend  = "azure"
  p2p_port     = var.p2p_port
  api_port     = var.api_port
  peers        = var.peers
  genesis_b64  = var.genesis_b64
  sigil_url    = var.sigil_url
  sigil_sha256 = var.sigil_sha256
}

resource "azurerm_linux_virtual_machine" "node" {
  for_each              = toset(var.nodes)
  name                  = "sigil-${var.pod}-${each.key}"
  location              = var.location
  resource_group_name   = var.resource_group_name
  size                  = local.size
  admin_username        = "sigiladmin"
  network_interface_ids = [azurerm_network_interface.node[each.key].id]
  secure_boot_enabled   = true
  vtpm_enabled          = true
  admin_ssh_key {
    username   = "sigiladmin"
    public_key = var.admin_ssh_public_key
  }
  os_disk {
    caching                  = "ReadWrite"
    storage_account_type     = "Premium_LRS"
    security_encryption_type = "VMGuestStateOnly"
  }
  source_image_reference {
    publisher = "Canonical"
    offer     = "0001-com-ubuntu-confidential-vm-jammy"
    sku       = "22_04-lts-cvm"
    version   = "latest"
  }
  custom_data = base64encode(module.node_init.user_data[each.key])
  tags        = local.tags
}
