# Outbound TCP 443 only: Slack (Web API + Socket Mode websocket), AWS APIs and the SSM data channel
# (wss://ssmmessages...) are all HTTPS. DNS uses the VPC resolver, which security groups do not filter.
resource "aws_security_group" "bot" {
  name_prefix = "${var.name}-"
  description = "ecs-exec-bot tasks: HTTPS out only; in only from the load balancer in HTTP mode."
  vpc_id      = var.vpc_id
  tags        = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = toset(var.egress_cidr_blocks)

  security_group_id = aws_security_group.bot.id
  description       = "HTTPS: Slack, AWS APIs, SSM data channel"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "from_load_balancer" {
  for_each = toset(var.ingress_security_group_ids)

  security_group_id            = aws_security_group.bot.id
  description                  = "HTTP mode: Slack requests and health checks from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = each.value
}
