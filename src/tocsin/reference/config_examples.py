"""The examples of docs/configuration.md, each a whole file.

tests/test_config_reference.py runs `tocsin check config` on each (creating the /etc/tocsin
files they name) and fails when a key of the reference appears in none of them, so an option
added to a model gets an example here, not only a line in the tables.
"""

from __future__ import annotations

EXAMPLES: list[tuple[str, str]] = [
    ("A minimal file: one web site", """
        targets:
          - name: example
            url: https://example.com/
    """),
    ("Each kind of probe", """
        global:
          interval: 30s
          timeout: 5s
        targets:
          - name: api-health
            url: https://api.example.com/health
            labels: {service: api, team: payments}
            http:
              method: GET
              valid_status_codes: [200, 204]
              fail_if_body_not_matches_regexp: ['"status": *"ok"']
              tls: {server_name: api.example.com}
          - name: postgres
            tcp: {address: db.example.com:5432}
            interval: 15s
            retry: {attempts: 2, initial_backoff: 200ms}
          - name: smtp-starttls
            tcp:
              address: mail.example.com:25
              query_response:
                - expect: "^220"
                - send: "EHLO tocsin\\r\\n"
                - expect: "STARTTLS"
                - send: "STARTTLS\\r\\n"
                - expect: "^220"
                - starttls: true
          - name: dns-example
            dns: {query: example.com, type: A, server: 127.0.0.1:53}
    """),
    ("Rules and alerts to the journal, Slack and a webhook", """
        targets:
          - name: api-health
            url: https://api.example.com/health
            labels: {team: payments}
        rule_files: [rules/*.yml]
        alerting:
          route:
            receiver: journal
            group_by: [alertname, target]
            group_wait: 30s
            group_interval: 5m
            repeat_interval: 4h
            routes:
              - matchers: ['severity="critical"', 'team="payments"']
                receiver: payments-slack
                continue: true
              - matchers: ['severity=~"warning|critical"']
                receiver: tickets
          inhibit_rules:
            - source_matchers: ['alertname="TargetDown"']
              target_matchers: ['alertname="TargetSlow"']
              equal: [target]
          receivers:
            - name: journal
              log: {level: warning}
            - name: payments-slack
              slack:
                webhook_url: ${SLACK_WEBHOOK_URL}
                channel: "#payments-alerts"
            - name: tickets
              webhook:
                url: http://127.0.0.1:8080/alerts
                send_resolved: true
    """),
    ("The daemon's own listener and logs", """
        global:
          listen_address: 0.0.0.0:9469
          state_dir: /var/lib/tocsin
          external_labels: {site: paris}
          web:
            allowed_hosts: [tocsin.example.com]
        logging:
          level: info
          console: {format: text}
          file: {path: /var/log/tocsin/tocsin.log, format: json, max_bytes: 10MiB, backup_count: 5}
        targets:
          - name: tocsin-self
            url: http://127.0.0.1:9469/-/healthy
    """),
    ("HTTP options pasted from blackbox_exporter", """
        targets:
          - name: shop
            url: https://shop.example.com/
            timeout: 10s
            http:
              method: POST
              headers: {Content-Type: application/json, X-Probe: tocsin}
              body: '{"ping": true}'
              valid_status_codes: [200, 201]
              follow_redirects: true
              max_redirects: 3
              allow_insecure_redirects: false
              max_body_bytes: 256KiB
              fail_if_body_matches_regexp: ['(?i)maintenance']
              fail_if_header_matches:
                - {header: Set-Cookie, regexp: 'Secure', allow_missing: true}
              fail_if_header_not_matches:
                - {header: Content-Type, regexp: '^application/json'}
              compression: gzip
              proxy_url: http://proxy.example.com:3128
              ip_protocol: ip6
              ip_protocol_fallback: true
              addresses: all
              keep_alive: false
              tls_config: {server_name: shop.example.com, insecure_skip_verify: false}
          - name: admin
            url: https://admin.example.com/login
            http:
              basic_auth: {username: monitor, password_file: /etc/tocsin/admin-password}
              tls:
                insecure_skip_verify: false
                ca_file: /etc/tocsin/internal-ca.pem
                cert_file: /etc/tocsin/client.pem
                key_file: /etc/tocsin/client-key.pem
          - name: api-token
            url: https://api.example.com/v1/status
            http:
              basic_auth: {username: monitor, password: "${API_PASSWORD}"}
              bearer_token_file: /etc/tocsin/api-token
          - name: api-token-inline
            url: https://api.example.com/v2/status
            http: {bearer_token: "${API_TOKEN}"}
    """),
    ("TCP: TLS, a banner, a STARTTLS dialogue, every address", """
        targets:
          - name: imaps
            tcp:
              address: mail.example.com:993
              tls: true
              tls_config: {server_name: mail.example.com}
          - name: ssh-banner
            tcp:
              address: git.example.com:22
              expect: "^SSH-2.0-"
              send: "SSH-2.0-tocsin\\r\\n"
              ip_protocol: ip4
              ip_protocol_fallback: false
              addresses: any
          - name: smtp-submission
            tcp:
              address: mail.example.com:587
              tls_config: {ca_file: /etc/tocsin/internal-ca.pem}
              query_response:
                - expect: "^220 "
                  send: "EHLO tocsin\\r\\n"
                - expect: "^250-STARTTLS"
                - send: "STARTTLS\\r\\n"
                - expect: "^220 "
                  starttls: true
                - send: "QUIT\\r\\n"
    """),
    ("DNS, ICMP, gRPC and push targets", """
        targets:
          - name: resolver
            dns:
              query: example.com
              type: MX
              server: 127.0.0.53:53
              transport: tcp
              valid_rcodes: [NOERROR]
              fail_if_no_answer: true
              ip_protocol: ip4
              ip_protocol_fallback: true
              addresses: first
          - name: gateway-ping
            icmp:
              host: 192.0.2.1
              packets: 5
              packet_interval: 200ms
              payload_size: 56
              ttl: 64
              ip_protocol: ip4
              ip_protocol_fallback: false
              source_ip_address: 192.0.2.10
              dont_fragment: true      # a path MTU below the payload fails the probe
          - name: orders-grpc
            grpc:
              address: orders.example.com:50051
              service: orders.v1.Orders
              tls: true
              tls_config: {server_name: orders.example.com, ca_file: /etc/tocsin/internal-ca.pem}
              metadata: {authorization: "Bearer ${ORDERS_TOKEN}"}
              ip_protocol: ip6
              ip_protocol_fallback: true
          - name: nightly-backup
            # the job ends with: curl -X POST -H "Authorization: Bearer $TOKEN" \\
            #   'http://tocsin:9469/api/v1/push/nightly-backup?status=up&msg=done'
            interval: 1d
            push: {token_file: /etc/tocsin/backup-push-token, grace: 2h}
          - name: cron-report
            interval: 1h
            push: {token: "${REPORT_PUSH_TOKEN}"}
    """),
    ("Maintenance windows, backoff and retries per target", """
        global:
          retry: {attempts: 2, initial_backoff: 100ms, max_backoff: 1s, multiplier: 3, jitter: true}
        targets:
          - name: erp
            url: https://erp.example.com/health
            interval: 1m
            timeout: 20s
            labels: {team: finance}
            retry: {attempts: 3}
            backoff_when_down: {max_interval: 10m, multiplier: 2}
            # no probes (the status page says "maintenance") on Sunday nights, Berlin time,
            # and all day on the first of each month in 2026 and 2027
            maintenance:
              - weekdays: [sunday]
                times: [{start_time: "01:00", end_time: "04:00"}]
                location: Europe/Berlin
              - days_of_month: ["1"]
                months: ["january:december"]
                years: ["2026:2027"]
    """),
    ("Alertmanager's time intervals, legacy matchers and delivery tuning", """
        targets:
          - name: batch
            url: https://batch.example.com/health
        rule_files: [rules/*.yml]
        alerting:
          external_url: https://tocsin.example.com
          resolve_timeout: 5m
          time_intervals:
            - name: office-hours
              time_intervals:
                - weekdays: ["monday:friday"]
                  times: [{start_time: "09:00", end_time: "18:00"}]
                  location: Europe/Paris
          mute_time_intervals:  # Alertmanager's older name, same form
            - name: christmas
              time_intervals: [{months: ["12"], days_of_month: ["24:26"]}]
          route:
            receiver: oncall
            group_by: ['...']
            routes:
              - matchers: ['team="batch"']
                receiver: mail
                mute_time_intervals: [christmas]
              - match: {severity: warning}
                match_re: {target: "batch|report.*"}
                receiver: tickets
                active_time_intervals: [office-hours]
          inhibit_rules:
            - name: down-hides-slow
              source_match: {alertname: TargetDown}
              source_match_re: {severity: "critical|page"}
              target_match: {alertname: TargetSlow}
              target_match_re: {severity: "warning|info"}
              equal: [target]
          receivers:
            - name: oncall
              pagerduty:
                routing_key_file: /etc/tocsin/pagerduty-key
                url: https://events.pagerduty.com/v2/enqueue
                source: tocsin.example.com
                severity: critical
                client: tocsin
                client_url: https://tocsin.example.com
                component: web
                group: shop
                class: availability
                send_resolved: true
                timeout: 15s
            - name: tickets
              webhook:
                url_file: /etc/tocsin/ticket-webhook-url
                max_alerts: 20
                headers: {X-Team: ops}
                timeout: 5s
            - name: mail
              email:
                to: [ops@example.com]
                from: tocsin@example.com
                smarthost: smtp.example.com:587
                hello: tocsin.example.com
                auth_username: tocsin
                auth_password_file: /etc/tocsin/smtp-password
                require_tls: true
                insecure_skip_verify: false
                ca_file: /etc/tocsin/internal-ca.pem
                headers: {Subject: "[tocsin] alert"}
            - name: mail-inline
              email:
                to: ops@example.com, boss@example.com
                from: tocsin@example.com
                smarthost: smtp.example.com:587
                auth_username: tocsin
                auth_password: ${SMTP_PASSWORD}
                send_resolved: true
                timeout: 30s
            - name: slack-from-file
              slack:
                webhook_url_file: /etc/tocsin/slack-url
                username: tocsin
                icon_emoji: ":rotating_light:"
                send_resolved: true
                timeout: 5s
            - name: alertmanager
              alertmanager: {urls: ["http://alertmanager.example.com:9093"], send_resolved: true, timeout: 10s}
            - name: journal
              log: {level: error, send_resolved: false, timeout: 1s}
            - name: oncall-inline-key
              pagerduty: {routing_key: "${PAGERDUTY_ROUTING_KEY}"}
          delivery:
            initial_backoff: 2s
            max_backoff: 10m
            breaker_failures: 5
            breaker_cooldown: 2m
            expire_after: 12h
    """),
    ("Operators: basic auth, status pages, history, flapping, syslog, a sharded pair", """
        global:
          evaluation_interval: 30s
          max_concurrent_probes: 1000
          web:
            # htpasswd -nbBC 10 "" PASSWORD | tr -d ':\\n'  (or sha256:<hex of the password>)
            basic_auth_users:
              ops: $2b$10$kfo8hJ6r4DZkIJaQbUj/dOjyq1rtiJi124YuYrDUTX0RM/qOjyPjW
            max_connections: 1024
          flapping: {enabled: true, window: 21, high: 30, low: 25}
        logging:
          syslog: {address: /dev/log, facility: local0, level: warning}
        cluster:
          shards: 2
          shard: 0         # `tocsin run --shard 1` for the other one
          replica: a       # and its HA twin says b
        history:
          minutes: 2d
          hours: 90d
        status_page:
          title: Example Inc. status
          public: true
          targets: ["shop-*", api]
          group_by: service
          show_reasons: false
        targets:
          - name: shop-front
            url: https://shop.example.com/
            labels: {service: shop}
          - name: api
            url: https://api.example.com/health
            labels: {service: api}
    """),
]
