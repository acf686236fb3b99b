output "nodes" {
  description = "Each node: its private address, its TEE and the cloud."
  value = {
    for name, i in aws_instance.node : name => {
      address = i.private_ip
      tee     = "sev-snp"
      cloud   = "aws"
    }
  }
}
