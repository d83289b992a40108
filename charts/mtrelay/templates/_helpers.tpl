{{/* Names, labels and the pieces every role's pod shares. */}}

{{- define "mtrelay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mtrelay.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains (include "mtrelay.name" .) .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "mtrelay.name" .) | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; "mtrelay.componentLabels" adds the role. */}}
{{- define "mtrelay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "mtrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mtrelay
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mtrelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mtrelay.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mtrelay.componentLabels" -}}
{{ include "mtrelay.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mtrelay.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The Secrets the operator writes and the relay, deliverer and dispatcher read. */}}
{{- define "mtrelay.relayConfigSecret" -}}{{ include "mtrelay.fullname" . }}-relay-config{{- end -}}
{{- define "mtrelay.delivererConfigSecret" -}}{{ include "mtrelay.fullname" . }}-deliverer-config{{- end -}}
{{- define "mtrelay.dispatcherConfigSecret" -}}{{ include "mtrelay.fullname" . }}-dispatcher-config{{- end -}}

{{/* The dispatchers' consumer group: the Deployment's --group-id and its KafkaUser's group ACL. */}}
{{- define "mtrelay.dispatcherGroup" -}}mtrelay-dispatcher{{- end -}}

{{/* A config Secret set: the index and its pieces (shared/config/config-secrets.ts, MAX_CONFIG_PIECES = 31). */}}
{{- define "mtrelay.configSecretSet" -}}
- {{ . }}
{{- range $i := untilStep 1 32 1 }}
- {{ $ }}-{{ $i }}
{{- end }}
{{- end -}}

{{- define "mtrelay.required" -}}
{{- /* fail, not required: helm lint and helm-unittest let "required" through. */ -}}
{{- if not .Values.hostname -}}
{{- fail "hostname is required: the relay's public DNS name (greeting, EHLO, certificate), e.g. --set hostname=smtp.example.com" -}}
{{- end -}}
{{- if not .Values.kafka.bootstrapServers -}}
{{- fail "kafka.bootstrapServers is required: the brokers, HOST:PORT[,HOST:PORT…], e.g. --set kafka.bootstrapServers=my-cluster-kafka-bootstrap.kafka:9092" -}}
{{- end -}}
{{- if and (not .Values.relay.tls.secretName) (not .Values.relay.tls.certManager.issuerRef.name) (not .Values.relay.allowAuthWithoutTls) -}}
{{- fail "the relay needs a TLS certificate: set relay.tls.secretName (an existing kubernetes.io/tls Secret) or relay.tls.certManager.issuerRef.name (a cert-manager issuer); for a trial without TLS set relay.allowAuthWithoutTls=true (API keys then cross the network in the clear)" -}}
{{- end -}}
{{- if and .Values.kafka.strimzi.user.enabled (or .Values.kafka.sasl.mechanism .Values.kafka.tls.clientSecret.name) -}}
{{- fail "kafka.strimzi.user.enabled makes mtrelay connect as the KafkaUser it renders: leave kafka.sasl and kafka.tls.clientSecret empty" -}}
{{- end -}}
{{- if and (or .Values.kafka.strimzi.topics.enabled .Values.kafka.strimzi.user.enabled) (not .Values.kafka.strimzi.cluster) -}}
{{- fail "kafka.strimzi.cluster is required with kafka.strimzi.topics or kafka.strimzi.user: the name of the Strimzi Kafka resource" -}}
{{- end -}}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.passwordSecret.name) -}}
{{- fail "kafka.sasl.mechanism needs kafka.sasl.passwordSecret.name (and kafka.sasl.username)" -}}
{{- end -}}
{{- end -}}

{{/*
The Kafka connection of a role after Strimzi's KafkaUser is taken into account; called with
(dict "root" . "component" <role>). The tracker, which faces the Internet, has a KafkaUser of
its own that may only write engagement events; the inbound role, which takes mail from the
Internet, one that may only write events and suppressions; the API one that may only read and
write suppressions; the dispatcher, which posts to URLs tenants choose, one that may only read
events.
*/}}
{{- define "mtrelay.kafka" -}}
{{- $k := .root.Values.kafka -}}
{{- $user := include "mtrelay.kafkaUser" . -}}
{{- $strimziUser := $k.strimzi.user.enabled -}}
{{- $scram := and $strimziUser (eq $k.strimzi.user.authentication "scram-sha-512") -}}
{{- $mtls := and $strimziUser (eq $k.strimzi.user.authentication "tls") -}}
{{- $ca := $k.tls.caSecret.name | default (ternary (printf "%s-cluster-ca-cert" $k.strimzi.cluster) "" $strimziUser) -}}
{{- $client := ternary (dict "name" $user "certKey" "user.crt" "keyKey" "user.key") (dict "name" $k.tls.clientSecret.name "certKey" $k.tls.clientSecret.certKey "keyKey" $k.tls.clientSecret.keyKey) $mtls -}}
{{- $sasl := ternary (dict "mechanism" "scram-sha-512" "username" $user "name" $user "key" "password") (dict "mechanism" $k.sasl.mechanism "username" $k.sasl.username "name" $k.sasl.passwordSecret.name "key" $k.sasl.passwordSecret.key) $scram -}}
{{- $tls := or $k.tls.enabled $ca $client.name $strimziUser -}}
{{- toYaml (dict "tls" $tls "ca" (dict "name" $ca "key" $k.tls.caSecret.key) "client" $client "sasl" $sasl "createTopics" (and $k.createTopics (not $k.strimzi.topics.enabled))) -}}
{{- end -}}

{{/* The Strimzi KafkaUser (and its Secret) a role connects as: (dict "root" . "component" <role>). */}}
{{- define "mtrelay.kafkaUser" -}}
{{- include "mtrelay.fullname" .root }}{{ if has .component (list "tracker" "dispatcher" "inbound" "api") }}-{{ .component }}{{ end -}}
{{- end -}}

{{/*
Arguments of the Kafka roles: brokers, TLS, SASL, and for relay and deliverer the topics they
create and the records they produce (tracker, dispatcher and inbound create no topic and have no such
flags). Called with (dict "root" . "component" <role>).
*/}}
{{- define "mtrelay.kafkaArgs" -}}
{{- $root := .root -}}
{{- $c := include "mtrelay.kafka" . | fromYaml -}}
- --kafka={{ $root.Values.kafka.bootstrapServers }}
- --topic-prefix={{ $root.Values.kafka.topicPrefix }}
{{- if has .component (list "relay" "deliverer") }}
- --partitions={{ $root.Values.kafka.partitions }}
- --replication-factor={{ $root.Values.kafka.replicationFactor }}
- --retry-delays={{ join "," $root.Values.kafka.retryDelays }}
- --kafka-compression={{ $root.Values.kafka.compression }}
- --max-size={{ $root.Values.maxMessageBytes | int64 }}
{{- if not $c.createTopics }}
- --no-create-topics
{{- end }}
{{- end }}
{{- if $c.tls }}
- --kafka-tls
{{- end }}
{{- if $c.ca.name }}
- --kafka-tls-ca=/etc/mtrelay/kafka-ca/ca.crt
{{- end }}
{{- if $c.client.name }}
- --kafka-tls-cert=/etc/mtrelay/kafka-client/tls.crt
- --kafka-tls-key=/etc/mtrelay/kafka-client/tls.key
{{- end }}
{{- if $c.sasl.mechanism }}
- --kafka-sasl-mechanism={{ $c.sasl.mechanism }}
- --kafka-sasl-username={{ $c.sasl.username }}
- --kafka-sasl-password-file=/etc/mtrelay/kafka-sasl/password
{{- end }}
{{- end -}}

{{- define "mtrelay.kafkaVolumeMounts" -}}
{{- $c := include "mtrelay.kafka" . | fromYaml -}}
{{- if $c.ca.name }}
- {name: kafka-ca, mountPath: /etc/mtrelay/kafka-ca, readOnly: true}
{{- end }}
{{- if $c.client.name }}
- {name: kafka-client, mountPath: /etc/mtrelay/kafka-client, readOnly: true}
{{- end }}
{{- if $c.sasl.mechanism }}
- {name: kafka-sasl, mountPath: /etc/mtrelay/kafka-sasl, readOnly: true}
{{- end }}
{{- end -}}

{{- define "mtrelay.kafkaVolumes" -}}
{{- $c := include "mtrelay.kafka" . | fromYaml -}}
{{- if $c.ca.name }}
- name: kafka-ca
  secret:
    secretName: {{ $c.ca.name }}
    items: [{key: {{ $c.ca.key }}, path: ca.crt}]
{{- end }}
{{- if $c.client.name }}
- name: kafka-client
  secret:
    secretName: {{ $c.client.name }}
    items: [{key: {{ $c.client.certKey }}, path: tls.crt}, {key: {{ $c.client.keyKey }}, path: tls.key}]
{{- end }}
{{- if $c.sasl.mechanism }}
- name: kafka-sasl
  secret:
    secretName: {{ $c.sasl.name }}
    items: [{key: {{ $c.sasl.key }}, path: password}]
{{- end }}
{{- end -}}

{{/*
The tracking keys (one "<id> <base64 secret>" a line, newest first), shared by the tracker and
the deliverer: the user's Secret, or the one the chart generates once and keeps.
*/}}
{{- define "mtrelay.trackingKeysSecret" -}}
{{- .Values.tracking.keys.existingSecret | default (printf "%s-tracking-keys" (include "mtrelay.fullname" .)) -}}
{{- end -}}

{{/* The whole Secret is mounted (no subPath), so a changed Secret reaches the file in the pod. */}}
{{- define "mtrelay.trackingKeysVolume" -}}
- name: tracking-keys
  secret:
    secretName: {{ include "mtrelay.trackingKeysSecret" . }}
    items: [{key: keys, path: keys}]
{{- end -}}

{{/* Pod and container security: non-root, read-only root, nothing to escalate to. */}}
{{- define "mtrelay.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "mtrelay.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities: {drop: [ALL]}
{{- end -}}

{{/* Probes on the operations port every role serves. */}}
{{- define "mtrelay.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: metrics}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/* Pods of one role spread across zones and nodes, as far as the cluster allows. */}}
{{- define "mtrelay.topologySpread" -}}
{{- if .values.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "mtrelay.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "mtrelay.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{/* Scheduling values every role has. */}}
{{- define "mtrelay.scheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Whether the inbound role runs: enabled, and there is a bounce domain to be the MX of. */}}
{{- define "mtrelay.inboundEnabled" -}}
{{- if and .Values.inbound.enabled .Values.deliverer.bounceDomain }}true{{ end -}}
{{- end -}}
