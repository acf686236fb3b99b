# Sigil nodes on AWS EC2 with AMD SEV-SNP. The guest gets its SNP report from /dev/sev-guest (or configfs-tsm on
# Linux 6.7+): `[tee] backend = "snp"`. Measure the AWS firmware with `sigil measure snp --vmm ec2`.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30"
    }
  }
}

data "aws_subnet" "this" {
  id = var.subnet_id
}

resource "aws_security_group" "node" {
  name        = "sigil-${var.pod}-nodes"
  description = "Sigil pod ${var.pod}: libp2p and the HTTPS API"
  vpc_id      = data.aws_subnet.this.vpc_id
  ingress {
    description = "libp2p"
    from_port   = var.p2p_port
    to_port     = var.p2p_port
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }
  ingress {
    description = "HTTPS API and MCP"
    from_port   = var.api_port
    to_port     = var.api_port
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = { pod = var.pod, jurisdiction = var.jurisdiction }
}

module "node_init" {
  source       = "../node-init"
  nodes        = var.nodes
  pod          = var.pod
  jurisdiction = var.jurisdiction
  cloud        = "aws"
  region       = var.region
  tee_backend  = "snp"
  p2p_port     = var.p2p_port
  api_port     = var.api_port
  peers        = var.peers
  genesis_b64  = var.genesis_b64
  sigil_url    = var.sigil_url
  sigil_sha256 = var.sigil_sha256
}

resource "aws_instance" "node" {
  for_each               = toset(var.nodes)
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.node.id]
  cpu_options {
    amd_sev_snp = "enabled"
  }
  metadata_options {
    http_tokens = "required"
  }
  root_block_device {
    encrypted = true
  }
  user_data = module.node_init.user_data[each.key]
  tags      = { Name = "sigil-${var.pod}-${each.key}", pod = var.pod, jurisdiction = var.jurisdiction, tee = "sev-snp" }
}
