'use strict'

module.exports = {
  port: Number(process.env.PORT || 3000),
  apiKey: process.env.API_KEY,
  token: '<TOKEN>',
  buildSha: '5bc79f765752043db92b22f980805de4b845d131',
  slackToken: 'xoxb-649575477513-6465585901570-ewOy7LxzKyi4eOqJpwLANKJY',
  sendgridKey: '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',
  openaiKey: "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",
  secret: 'xxxxxxxxxxxxxxxxxxxx',
  password: '${DB_PASSWORD}',
}
