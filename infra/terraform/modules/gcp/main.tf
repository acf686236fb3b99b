# Sigil nodes on GCP Confidential VMs: AMD SEV-SNP on N2D, or Intel TDX on C3. The guest gets its report from
# configfs-tsm (or /dev/sev-guest for SNP on older kernels): `[tee] backend = "snp"` or "tdx". Measure Google's
# firmware for SNP with `sigil measure snp --vmm gce`.
terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0"
    }
  }
}

locals {
  machine_type = var.machine_type != "" ? var.machine_type : (var.tee == "tdx" ? "c3-standard-4" : "n2d-standard-4")
  # GCP labels: lowercase letters, digits, - and _.
  labels = { pod = lower(var.pod), jurisdiction = lower(var.jurisdiction), tee = var.tee, app = "sigil" }
}

resource "google_compute_firewall" "node" {
  name          = "sigil-${lower(var.pod)}-nodes"
  network       = var.network
  source_ranges = var.allowed_cidrs
  target_tags   = ["sigil-node"]
  allow {
    protocol = "tcp"
    ports    = [tostring(var.p2p_port), tostring(var.api_port)]
  }
}

module "node_init" {
  source       = "../node-init"
  nodes        = var.nodes
  pod          = var.pod
  jurisdiction = var.jurisdiction
  cloud        = "gcp"
  region       = var.region
  tee_backend  = var.tee
  p2p_port     = var.p2p_port
  api_port     = var.api_port
  peers        = var.peers
  genesis_b64  = var.genesis_b64
  sigil_url    = var.sigil_url
  sigil_sha256 = var.sigil_sha256
}

resource "google_compute_instance" "node" {
  for_each         = toset(var.nodes)
  name             = "sigil-${lower(var.pod)}-${each.key}"
  machine_type     = local.machine_type
  zone             = var.zone
  min_cpu_platform = var.tee == "snp" ? "AMD Milan" : null
  tags             = ["sigil-node"]
  labels           = local.labels

  confidential_instance_config {
    confidential_instance_type = var.tee == "tdx" ? "TDX" : "SEV_SNP"
  }
  # Confidential VMs cannot live-migrate.
  scheduling {
    on_host_maintenance = "TERMINATE"
  }
  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }
  boot_disk {
    initialize_params {
      image = var.image
    }
  }
  network_interface {
    subnetwork = var.subnetwork
  }
  metadata = {
    user-data = module.node_init.user_data[each.key]
  }
}
