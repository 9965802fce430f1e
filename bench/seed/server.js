// The seed's POST /api/chat, written again as a benchmark peer for bench/vs_seed.py (not part of the app).
//
// Exactly the seed's five steps, nothing more:
//   1. GET chat:<id>: the whole history as one JSON string, parsed;
//   2. push the user message;
//   3. call the model with the whole history (no trimming);
//   4. push the reply;
//   5. SETEX chat:<id> 86400 with the whole history, and answer {sessionId, reply, usage}.
//
// Environment: PORT (default 3000), REDIS_URL (default redis://127.0.0.1:6379), OPENAI_BASE_URL,
// OPENAI_API_KEY (optional: local servers need none), MODEL (default "llama3.2"). Listens on 127.0.0.1.
"use strict";

const crypto = require("node:crypto");
const express = require("express");
const Redis = require("ioredis");
const OpenAI = require("openai");

const TTL_SECONDS = 86400;
const port = Number(process.env.PORT || 3000);
const model = process.env.MODEL || "llama3.2";
const redis = new Redis(process.env.REDIS_URL || "redis://127.0.0.1:6379");
// maxRetries 0: a failed call shows up in the benchmark instead of being retried behind its back.
const openai = new OpenAI({
  apiKey: process.env.OPENAI_API_KEY || "not-needed",
  baseURL: process.env.OPENAI_BASE_URL,
  maxRetries: 0,
});

const app = express();
app.use(express.json({ limit: "50mb" }));

app.post("/api/chat", async (req, res) => {
  const { message } = req.body || {};
  if (typeof message !== "string" || !message) {
    return res.status(400).json({ error: "message is required" });
  }
  const sessionId = req.body.sessionId || crypto.randomUUID();
  try {
    const raw = await redis.get(`chat:${sessionId}`);
    const history = raw ? JSON.parse(raw) : [];
    history.push({ role: "user", content: message });
    const completion = await openai.chat.completions.create({ model, messages: history });
    const reply = completion.choices[0].message;
    history.push({ role: "assistant", content: reply.content });
    await redis.setex(`chat:${sessionId}`, TTL_SECONDS, JSON.stringify(history));
    res.json({ sessionId, reply: reply.content, usage: completion.usage });
  } catch (err) {
    res.status(502).json({ error: String((err && err.message) || err) });
  }
});

app.get("/health", (_req, res) => res.json({ ok: true }));

const server = app.listen(port, "127.0.0.1", () => {
  console.log(`seed listening on http://127.0.0.1:${server.address().port}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    redis.quit().finally(() => process.exit(0));
  });
}
