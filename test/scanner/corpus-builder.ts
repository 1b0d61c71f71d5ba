import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Finding } from '../../src/scanner/index.js'
import { createRng, fakeMakers, hex, alnum, publicKeyPem, type Rng } from './fakes.js'

/** One expected finding of the labelled corpus. */
export interface Label {
  file: string
  line: number
  rule: string
}

class FileBuilder {
  readonly lines: string[] = []
  readonly path: string
  private readonly rng: Rng
  private readonly labels: Label[]
  constructor(path: string, rng: Rng, labels: Label[]) {
    this.path = path
    this.rng = rng
    this.labels = labels
  }
  add(...text: string[]): this {
    for (const t of text) this.lines.push(...t.split('\n'))
    return this
  }
  /** Plants a fake secret for `rule` with `render`, and labels the line where it starts. */
  plant(rule: string, render: (value: string) => string, value?: string): string {
    const maker = fakeMakers[rule]
    if (!maker && value === undefined) throw new Error(`no fake maker for ${rule}`)
    const v = value ?? maker!.make(this.rng)
    const text = render(v)
    const firstLine = v.split('\n')[0]!
    const at = text.indexOf(firstLine)
    const offset = at < 0 ? 0 : text.slice(0, at).split('\n').length - 1
    this.labels.push({ file: this.path, line: this.lines.length + 1 + offset, rule })
    this.add(text)
    return v
  }
  text(): string {
    return this.lines.join('\n') + '\n'
  }
}

function randomBase64Block(rng: Rng, bytes: number, width = 64): string {
  const b = Buffer.from(rng.from(alnum, bytes)).toString('base64')
  return b.match(new RegExp(`.{1,${width}}`, 'g'))!.join('\n')
}

/**
 * Builds the labelled corpus: realistic files in many languages and formats with planted FAKE
 * credentials and decoys (placeholders, hashes, UUIDs, public keys, certificates, fixtures with
 * bad checksums). Returns the files and the labels; deterministic for a seed.
 */
export function buildCorpus(seed = 20261123): { files: Map<string, string>; labels: Label[] } {
  const rng = createRng(seed)
  const labels: Label[] = []
  const files = new Map<string, string>()
  const file = (path: string) => new FileBuilder(path, rng, labels)
  const done = (b: FileBuilder) => files.set(b.path, b.text())
  const uuid = () =>
    `${rng.from(hex, 8)}-${rng.from(hex, 4)}-4${rng.from(hex, 3)}-a${rng.from(hex, 3)}-${rng.from(hex, 12)}`
  const sha256 = () => createHash('sha256').update(rng.from(alnum, 20)).digest('hex')

  // Python settings: a shared GitHub token (also in .env.production), Stripe, AWS pair.
  const py = file('app/settings.py')
  py.add(
    '"""Django settings for the orders service."""',
    'import os',
    'from pathlib import Path',
    '',
    'BASE_DIR = Path(__file__).resolve().parent.parent',
    'DEBUG = os.environ.get("DEBUG", "0") == "1"',
    'SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]',
    'API_KEY = os.getenv("API_KEY")',
    'password = "changeme"',
    '# placeholder left for local development',
    'STRIPE_PUBLISHABLE = "pk_test_your-key-here"',
    `REQUEST_ID_NAMESPACE = "${uuid()}"`,
    `STATIC_MANIFEST_SHA256 = "${sha256()}"`,
  )
  const sharedGithub = py.plant('github-pat', (v) => `GITHUB_TOKEN = "${v}"`)
  py.plant('stripe-secret-key', (v) => `STRIPE_API_KEY = "${v}"`)
  py.plant('aws-access-key-id', (v) => `AWS_ACCESS_KEY_ID = "${v}"`)
  py.plant('aws-secret-access-key', (v) => `aws_secret_access_key = "${v}"`)
  py.add(
    '',
    'DATABASES = {',
    '    "default": {',
    '        "ENGINE": "django.db.backends.postgresql",',
    '        "PASSWORD": os.environ.get("DB_PASSWORD", ""),',
    '    }',
    '}',
  )
  py.plant('generic-secret-assignment', (v) => `REDIS_PASSWORD = "${v}"`)
  py.add('ALLOWED_HOSTS = ["orders.internal", "localhost"]')
  done(py)

  const js = file('web/src/config.js')
  js.add(
    "'use strict'",
    '',
    'module.exports = {',
    '  port: Number(process.env.PORT || 3000),',
    '  apiKey: process.env.API_KEY,',
    "  token: '<TOKEN>',",
    `  buildSha: '${rng.from(hex, 40)}',`,
  )
  js.plant('slack-bot-token', (v) => `  slackToken: '${v}',`)
  js.plant('sendgrid-api-key', (v) => `  sendgridKey: '${v}',`)
  js.plant('openai-api-key', (v) => `  openaiKey: "${v}",`)
  js.add("  secret: 'xxxxxxxxxxxxxxxxxxxx',", "  password: '${DB_PASSWORD}',", '}')
  done(js)

  const ts = file('web/src/client.ts')
  ts.add(
    "import { Anthropic } from '@anthropic-ai/sdk'",
    '',
    `const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'`,
    `export const traceId = '${uuid()}'`,
  )
  ts.plant('anthropic-api-key', (v) => `const anthropic = new Anthropic({ apiKey: '${v}' })`)
  ts.plant('huggingface-token', (v) => `const HF = '${v}'`)
  ts.plant('jwt', (v) => `const serviceJwt = '${v}'`)
  ts.add(
    "const token: string = process.env.TOKEN ?? ''",
    "export const docsExample = 'sk-ant-api03-EXAMPLE'",
    'export { anthropic, HF, serviceJwt, EMPTY_SHA256, token }',
  )
  ts.plant('anthropic-admin-key', (v) => `// admin key for usage reports: ${v}`)
  done(ts)

  const go = file('svc/main.go')
  go.add(
    'package main',
    '',
    'import (',
    '\t"fmt"',
    '\t"os"',
    ')',
    '',
    '// exampleKey is the AWS documentation key, not a secret.',
    'const exampleKey = "AKIAIOSFODNN7EXAMPLE"',
    'const exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
  )
  go.plant('gitlab-pat', (v) => `const gitlabToken = "${v}"`)
  go.plant('mailgun-api-key', (v) => `var mailgunKey = "${v}"`)
  go.plant('vault-service-token', (v) => `\tos.Setenv("VAULT_TOKEN", "${v}")`)
  go.add('func main() {', '\tfmt.Println(os.Getenv("PASSWORD"))', '}')
  done(go)

  const java = file('src/main/java/com/acme/App.java')
  java.add(
    'package com.acme;',
    '',
    'public final class App {',
    '    private static final String PASSWORD_FIELD = "password";',
    '    private static final String TOKEN_HEADER = "X-Auth-Token";',
  )
  java.plant('twilio-api-key', (v) => `    private static final String TWILIO_API_SECRET = "${v}";`)
  java.plant(
    'twilio-auth-token',
    (v) => `    private static final String TWILIO_AUTH_TOKEN = "${v}";`,
  )
  java.plant('datadog-api-key', (v) => `    static String DD_API_KEY = "${v}";`)
  java.plant('datadog-app-key', (v) => `    static String DD_APP_KEY = "${v}";`)
  java.add('    public static void main(String[] args) {}', '}')
  done(java)

  const yaml = file('deploy/values.yaml')
  yaml.add(
    'replicaCount: 2',
    'image:',
    '  repository: registry.acme.internal/orders',
    '  tag: 1.4.2',
    'database:',
    '  password: ${DB_PASSWORD}',
    '  token: "{{ .Values.global.token }}"',
  )
  yaml.plant('database-uri-password', (v) => `  url: ${v}`)
  yaml.plant('generic-secret-env', (v) => `  adminPassword: ${v}`)
  const acct = `acme${rng.from(hex, 6)}`
  yaml.plant(
    'azure-storage-connection-string',
    (v) =>
      `storage: "DefaultEndpointsProtocol=https;AccountName=${acct};AccountKey=${v};EndpointSuffix=core.windows.net"`,
    fakeMakers['azure-storage-account-key']!.make(rng),
  )
  yaml.add('resources:', '  limits:', '    memory: 256Mi')
  done(yaml)

  const sa = file('config/service-account.json')
  const pk = fakeMakers['pkcs8-private-key']!.make(rng)
  sa.add(
    '{',
    '  "type": "service_account",',
    '  "project_id": "acme-prod-221",',
    `  "private_key_id": "${rng.from(hex, 40)}",`,
  )
  sa.plant('gcp-service-account-key', (v) => `  "private_key": ${JSON.stringify(v)},`, pk)
  sa.add(
    '  "client_email": "orders@acme-prod-221.iam.gserviceaccount.com",',
    `  "client_id": "${rng.from('0123456789', 21)}",`,
    '  "token_uri": "https://oauth2.googleapis.com/token"',
    '}',
  )
  done(sa)

  const env = file('.env.production')
  env.add('# production settings', 'NODE_ENV=production', 'API_KEY=', 'TOKEN=xxxxxxxxxxxx')
  env.plant('github-pat', (v) => `GITHUB_TOKEN=${v}`, sharedGithub)
  for (const rule of [
    'npm-token',
    'pypi-token',
    'dockerhub-pat',
    'digitalocean-token',
    'databricks-token',
    'github-fine-grained-pat',
    'shopify-access-token',
    'shopify-shared-secret',
    'stripe-webhook-secret',
    'github-oauth-token',
    'github-app-installation-token',
  ]) {
    env.plant(rule, (v) => `${fakeMakers[rule]!.name}=${v}`)
  }
  env.plant('generic-secret-env', (v) => `SMTP_PASSWORD=${v}`)
  env.add('SESSION_SECRET=${SESSION_SECRET}', 'LOG_LEVEL=info')
  done(env)

  const docker = file('Dockerfile')
  docker.add('FROM node:24-slim', 'WORKDIR /app', 'ARG GITHUB_TOKEN', 'COPY package*.json ./')
  docker.plant(
    'npm-token',
    (v) => `RUN echo "//registry.npmjs.org/:_authToken=${v}" > .npmrc && npm ci`,
  )
  docker.add('COPY . .', 'ENV PASSWORD_FILE=/run/secrets/db_password', 'CMD ["node", "server.js"]')
  done(docker)

  const tf = file('infra/main.tf')
  tf.add('provider "aws" {', '  region     = "eu-west-1"')
  tf.plant('aws-access-key-id', (v) => `  access_key = "${v}"`)
  tf.plant('aws-secret-access-key', (v) =>
    `  secret_key = "${v}"`.replace('secret_key', 'aws_secret_key'),
  )
  tf.add('}', '', 'resource "azuread_application_password" "ci" {')
  tf.plant('azure-ad-client-secret', (v) => `  value = "${v}"`)
  tf.add(
    '}',
    '',
    'variable "db_password" {}',
    'resource "aws_db_instance" "db" {',
    '  password = var.db_password',
    '}',
  )
  tf.plant('gcp-api-key', (v) => `locals { maps_key = "${v}" }`)
  done(tf)

  const sh = file('scripts/deploy.sh')
  sh.add(
    '#!/usr/bin/env bash',
    'set -euo pipefail',
    'curl -fsS -H "Authorization: Bearer $TOKEN" https://api.acme.internal/deploy',
  )
  sh.plant('basic-auth-url', (v) => `git clone ${v.replace('/v2/', '/acme/orders.git')}`)
  sh.plant('slack-webhook', (v) => `curl -X POST -d '{"text":"deployed"}' ${v}`)
  sh.plant(
    'telegram-bot-token',
    (v) => `curl "https://api.telegram.org/bot${v}/sendMessage?chat_id=42&text=ok"`,
  )
  sh.add('curl -u "deploy:${REGISTRY_PASSWORD}" https://registry.acme.internal/v2/', 'echo done')
  done(sh)

  const props = file('src/main/resources/application.properties')
  props.add(
    'spring.application.name=orders',
    'spring.datasource.username=orders',
    'spring.datasource.password=${DB_PASS}',
  )
  props.plant('generic-secret-env', (v) => `mail.smtp.password=${v}`)
  props.plant(
    'database-uri-password',
    (v) => `reporting.url=${v.replace('postgres://', 'mysql://')}`,
  )
  props.add('server.port=8080')
  done(props)

  const xml = file('config/Web.config')
  xml.add(
    '<?xml version="1.0" encoding="utf-8"?>',
    '<configuration>',
    '  <appSettings>',
    '    <add key="Environment" value="Production" />',
  )
  xml.plant('stripe-restricted-key', (v) => `    <add key="StripeRestricted" value="${v}" />`)
  xml.plant('azure-storage-account-key', (v) =>
    `    <add key="AccountKey" value="${v}" />`.replace(
      'key="AccountKey" value=',
      'key="x" AccountKey=',
    ),
  )
  xml.add(
    '    <add key="ApiKey" value="your-api-key-here" />',
    '  </appSettings>',
    '</configuration>',
  )
  done(xml)

  const md = file('docs/README.md')
  md.add(
    '# Orders service',
    '',
    'Set your token before running:',
    '',
    '```sh',
    'export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
    'export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE',
    'export OPENAI_API_KEY=sk-...',
    '```',
    '',
    'The service verifies webhooks with this public key:',
    '',
    '```',
    publicKeyPem().trim(),
    '```',
    '',
    'Alerts used to go to this channel (rotate it!):',
    '',
  )
  md.plant('discord-webhook', (v) => `    ${v}`)
  md.add('', 'Contact the platform team for access.')
  done(md)

  const nb = file('notebooks/analysis.ipynb')
  nb.add(
    '{',
    ' "cells": [',
    '  {',
    '   "cell_type": "code",',
    '   "source": [',
    '    "import openai\\n",',
  )
  nb.plant('openai-api-key', (v) => `    "openai.api_key = \\"${v}\\"\\n",`)
  nb.plant('huggingface-token', (v) => `    "login(token=\\"${v}\\")\\n",`)
  nb.add(
    '    "df = load()"',
    '   ]',
    '  }',
    ' ],',
    ' "metadata": {"kernelspec": {"name": "python3"}},',
    ' "nbformat": 4,',
    ' "nbformat_minor": 5',
    '}',
  )
  done(nb)

  const keyFiles: [string, string][] = [
    ['keys/id_ed25519', 'openssh-private-key'],
    ['keys/server.key', 'rsa-private-key'],
    ['keys/ec.pem', 'ec-private-key'],
    ['keys/legacy-dsa.pem', 'dsa-private-key'],
    ['keys/tls.key', 'pkcs8-private-key'],
    ['keys/backup.key', 'pkcs8-encrypted-private-key'],
    ['keys/release.asc', 'pgp-private-key'],
    ['keys/deploy.ppk', 'putty-private-key'],
  ]
  for (const [path, rule] of keyFiles) {
    const k = file(path)
    k.plant(rule, (v) => v.trimEnd())
    done(k)
  }
  const pub = file('keys/id_ed25519.pub')
  pub.add(`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${rng.from(alnum, 43)} deploy@build`)
  done(pub)
  const cert = file('keys/server.crt')
  cert.add('-----BEGIN CERTIFICATE-----', randomBase64Block(rng, 600), '-----END CERTIFICATE-----')
  done(cert)
  const pubPem = file('keys/public.pem')
  pubPem.add(publicKeyPem().trim())
  done(pubPem)

  const lock = file('package-lock.json')
  lock.add('{', '  "name": "orders",', '  "lockfileVersion": 3,', '  "packages": {')
  for (let i = 0; i < 6; i++) {
    lock.add(
      `    "node_modules/pkg-${i}": {`,
      `      "version": "1.${i}.0",`,
      `      "resolved": "https://registry.npmjs.org/pkg-${i}/-/pkg-${i}-1.${i}.0.tgz",`,
      `      "integrity": "sha512-${Buffer.from(rng.from(alnum, 64)).toString('base64')}"`,
      '    },',
    )
  }
  lock.add('    "": {}', '  }', '}')
  done(lock)
  const yarn = file('yarn.lock')
  yarn.add(
    'lodash@^4.17.21:',
    '  version "4.17.21"',
    `  integrity sha512-${Buffer.from(rng.from(alnum, 64)).toString('base64')}`,
  )
  done(yarn)
  const gosum = file('go.sum')
  gosum.add(`github.com/acme/lib v1.2.3 h1:${Buffer.from(rng.from(alnum, 32)).toString('base64')}`)
  done(gosum)

  const k8s = file('k8s/secret.yaml')
  k8s.add(
    'apiVersion: v1',
    'kind: Secret',
    'metadata:',
    '  name: orders',
    'type: Opaque',
    'stringData:',
  )
  k8s.plant('generic-secret-env', (v) => `  api_token: ${v}`)
  k8s.add(`  username: orders`, `  uid: ${uuid()}`)
  done(k8s)

  const ci = file('.gitlab-ci.yml')
  ci.add(
    'stages: [build, deploy]',
    'build:',
    '  script:',
    '    - echo "$CI_JOB_TOKEN" | docker login -u gitlab-ci-token --password-stdin',
  )
  ci.plant(
    'gitlab-pipeline-trigger-token',
    (v) =>
      `    - curl -X POST -F token=${v} -F ref=main https://gitlab.acme.internal/api/v4/projects/7/trigger/pipeline`,
  )
  ci.plant('gitlab-runner-token', (v) => `    - gitlab-runner register --token ${v}`)
  done(ci)

  const rb = file('app/mailer.rb')
  rb.add('class Mailer', '  API_BASE = "https://us6.api.mailchimp.com/3.0"')
  rb.plant('mailchimp-api-key', (v) => `  MAILCHIMP_KEY = "${v}"`)
  rb.plant('postman-api-key', (v) => `  POSTMAN = "${v}"`)
  rb.plant('linear-api-key', (v) => `  LINEAR = '${v}'`)
  rb.plant('new-relic-user-key', (v) => `  NEW_RELIC = '${v}'`)
  rb.add('  def deliver; end', 'end')
  done(rb)

  const php = file('config/services.php')
  php.add('<?php', '', 'return [')
  php.plant('grafana-service-account-token', (v) => `    'grafana' => '${v}',`)
  php.plant('doppler-token', (v) => `    'doppler' => '${v}',`)
  php.plant('age-secret-key', (v) => `    'age' => '${v}',`)
  php.plant('slack-user-token', (v) => `    'slack_user' => '${v}',`)
  php.plant('slack-app-token', (v) => `    'slack_app' => '${v}',`)
  php.plant('vault-batch-token', (v) => `    'vault_batch' => '${v}',`)
  php.plant('github-user-to-server-token', (v) => `    'gh_user' => '${v}',`)
  php.plant('github-refresh-token', (v) => `    'gh_refresh' => '${v}',`)
  php.plant('azure-sas-token', (v) => `    'blob' => '${v}',`)
  php.add("    'password' => env('DB_PASSWORD'),", '];')
  done(php)

  // Test fixtures: right prefixes, wrong checksums or placeholder shapes: none is a finding.
  const fx = file('tests/fixtures/tokens.py')
  fx.add(
    '# Fixtures: these look like tokens but fail the checksum or are placeholders.',
    `BAD_CHECKSUM_PAT = "ghp_${rng.from(alnum, 36)}"`,
    `BAD_CHECKSUM_NPM = "npm_${rng.from(alnum, 36)}"`,
    'PLACEHOLDER = "ghp_' + 'x'.repeat(36) + '"',
    'STRIPE = "sk_live_' + '0'.repeat(24) + '"',
    `NOT_A_JWT = "eyJ${rng.from(alnum, 20)}.eyJ${rng.from(alnum, 20)}.${rng.from(alnum, 20)}"`,
    `IGNORED = "${fakeMakers['sendgrid-api-key']!.make(rng)}"  # tessera:allow`,
    `password = "hunter2"`,
    `token = "${uuid()}"`.replace('token', 'request_id'),
  )
  done(fx)

  return { files, labels }
}

/** Writes the corpus under `dir` and returns the labels. */
export function writeCorpus(dir: string, seed?: number): Label[] {
  const { files, labels } = buildCorpus(seed)
  for (const [path, text] of files) {
    const abs = join(dir, path)
    mkdirSync(dirname(abs), { recursive: true })
    writeFileSync(abs, text)
  }
  return labels
}

const key = (x: { file: string; line: number; rule: string }) => `${x.file}:${x.line}:${x.rule}`

/** Recall and precision per rule and overall on the labelled corpus. */
export function score(findings: readonly Finding[], expected: readonly Label[]) {
  const want = new Set(expected.map(key))
  const got = new Set(findings.map(key))
  const perRule = new Map<string, { tp: number; fn: number; fp: number }>()
  const entry = (rule: string) => {
    let e = perRule.get(rule)
    if (!e) perRule.set(rule, (e = { tp: 0, fn: 0, fp: 0 }))
    return e
  }
  for (const l of expected) {
    if (got.has(key(l))) entry(l.rule).tp++
    else entry(l.rule).fn++
  }
  for (const f of findings) if (!want.has(key(f))) entry(f.rule).fp++
  let tp = 0
  let fn = 0
  let fp = 0
  for (const e of perRule.values()) {
    tp += e.tp
    fn += e.fn
    fp += e.fp
  }
  return {
    perRule,
    recall: tp / Math.max(1, tp + fn),
    precision: tp / Math.max(1, tp + fp),
  }
}
