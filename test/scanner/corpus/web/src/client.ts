import { Anthropic } from '@anthropic-ai/sdk'

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
export const traceId = '24471179-316d-47f0-a767-cb3a23e035f4'
const anthropic = new Anthropic({ apiKey: 'sk-ant-api03-y3pbhyqhX-gaop6k6lUM_pwvOD9tFDddTW-7LOCzCkwrDGxWf79UdOjNO-6Zrs72TFapE5a_8TYQkC1gE9N6LTbSoKMkuAA' })
const HF = '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'
const serviceJwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdmMtMzBiZDM4MjQiLCJpYXQiOjE3MDA4MjQ2NjV9.9-IMQqx281PvjWwNSjHgnL4qJ9pD5zZ1sr0JD9Hmgls'
const token: string = process.env.TOKEN ?? ''
export const docsExample = 'sk-ant-api03-EXAMPLE'
export { anthropic, HF, serviceJwt, EMPTY_SHA256, token }
// admin key for usage reports: sk-ant-admin01-1dr4cT9cEZTwOQtujIDgUFM_0MAyFwdaoh2yyx5pZlo6EzkNC7t09uXFYRCwz4c4syZcF_dp89Is3w0BtKJPImqhcyttTAA
