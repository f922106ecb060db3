// Drives `llama3 serve` with OpenAI's own JavaScript client (npm `openai`), as a user would:
// models, chat and completions, streamed and not, and the errors the SDK raises.
// Usage: node openai_client_test.mjs <node_modules dir> <base URL, e.g. http://127.0.0.1:8080/v1> <api key>
// Prints one JSON object with what it saw; the C++ test checks it.
import { createRequire } from 'node:module';
import path from 'node:path';

const [modules, baseURL, apiKey] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), 'noop.js'));
const openai = require('openai');
const OpenAI = openai.OpenAI ?? openai.default ?? openai;

// No retries: a 429 or 5xx must show as the error it is.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const sampling = { temperature: 0.7, top_p: 0.9, seed: 7, ignore_eos: true };
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => ({ id: m.id, owned_by: m.owned_by }));
const model = out.models[0].id;
const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Name a colour.' }];

const chat = await client.chat.completions.create({ model, messages, max_completion_tokens: 5, ...sampling });
out.chat = { content: chat.choices[0].message.content, finish_reason: chat.choices[0].finish_reason, usage: chat.usage,
             object: chat.object };

const stream = await client.chat.completions.create({ model, messages, max_completion_tokens: 5, ...sampling,
                                                      stream: true, stream_options: { include_usage: true } });
out.chat_stream = { content: '', chunks: 0, finish_reason: null, usage: null };
for await (const chunk of stream) {
  out.chat_stream.chunks += 1;
  if (chunk.usage) out.chat_stream.usage = chunk.usage;
  for (const choice of chunk.choices) {
    out.chat_stream.content += choice.delta?.content ?? '';
    if (choice.finish_reason) out.chat_stream.finish_reason = choice.finish_reason;
  }
}

const completion = await client.completions.create({ model, prompt: 'Roses are', max_tokens: 4, ...sampling,
                                                     logprobs: 1 });
out.completion = { text: completion.choices[0].text, finish_reason: completion.choices[0].finish_reason,
                   usage: completion.usage, logprob_tokens: completion.choices[0].logprobs?.tokens?.length ?? 0 };

const cstream = await client.completions.create({ model, prompt: 'Roses are', max_tokens: 4, ...sampling,
                                                  stream: true });
out.completion_stream = { text: '', finish_reason: null };
for await (const chunk of cstream) {
  for (const choice of chunk.choices) {
    out.completion_stream.text += choice.text ?? '';
    if (choice.finish_reason) out.completion_stream.finish_reason = choice.finish_reason;
  }
}

// The SDK's error classes from our status codes and bodies.
async function failure(promise) {
  try {
    await promise;
    return { status: 0 };
  } catch (e) {
    return { status: e.status ?? -1, class: e.constructor.name, code: e.code ?? null, param: e.param ?? null,
             type: e.type ?? null };
  }
}
out.errors = {
  unknown_model: await failure(client.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 1 })),
  n_two: await failure(client.chat.completions.create({ model, messages, max_tokens: 1, n: 2 })),
  bad_key: await failure(new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 }).models.list()),
};

console.log(JSON.stringify(out));
