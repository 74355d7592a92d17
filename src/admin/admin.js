// The admin page: signs in with the admin password or the API key (kept for this tab
// only, in sessionStorage), then every 2 s reads the cluster (info, channels) and this
// process's counters (stats) from <prefix>/admin/api/, and draws them.

import { LineChart } from './chart.js';

const API = new URL('api/', import.meta.url);
const EVERY_MS = 2000;
const $ = (selector) => document.querySelector(selector);

let secret = sessionStorage.getItem('comet-admin') ?? '';
let timer = null;
let last = null; // the previous stats, for the rate

/** Calls an admin API method; rejects with the server's error message. */
async function call(method, params = {}) {
  const response = await fetch(new URL(method, API), {
    method: 'POST',
    headers: { authorization: `apikey ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(params),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(answer.error?.message ?? `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return answer;
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = String(text);
  row.append(td);
}

function uptime(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${seconds % 60} s` : `${seconds} s`;
}

const charts = {};

async function refresh() {
  try {
    const [info, channels, stats] = await Promise.all([
      call('info'),
      call('channels'),
      call('stats'),
    ]);
    const body = $('#processes tbody');
    body.replaceChildren(
      ...info.processes.map((process) => {
        const row = document.createElement('tr');
        row.dataset.id = process.id;
        if (process.id === stats.process) row.className = 'this';
        for (const value of [
          process.id,
          process.role,
          process.version,
          uptime(process.uptime_s),
          process.connections,
          process.subscriptions,
        ]) {
          cell(row, value);
        }
        return row;
      }),
    );
    const connections = info.processes.reduce((sum, p) => sum + p.connections, 0);
    charts.connections.push(connections);
    $('#connections-now').textContent = String(connections);

    const now = performance.now();
    if (last) {
      const seconds = (now - last.at) / 1000;
      const rate = Math.max(0, (stats.published - last.published) / seconds);
      charts.rate.push(rate);
      $('#rate-now').textContent = rate.toFixed(1);
    }
    last = { at: now, published: stats.published };

    const busiest = Object.entries(channels.channels)
      .sort((a, b) => b[1].subscribers - a[1].subscribers || a[0].localeCompare(b[0]))
      .slice(0, 10);
    $('#channels tbody').replaceChildren(
      ...busiest.map(([name, { subscribers }]) => {
        const row = document.createElement('tr');
        cell(row, name);
        cell(row, subscribers);
        return row;
      }),
    );
    $('#status').textContent = `signed in · ${info.processes.length} process(es)`;
  } catch (error) {
    if (error.status === 401) return signOut('the password was refused');
    $('#status').textContent = `cannot reach the server: ${error.message}`;
  }
}

async function signIn(given) {
  secret = given;
  try {
    await call('info');
  } catch (error) {
    secret = '';
    $('#sign-in-error').textContent =
      error.status === 401 ? 'wrong password or key' : error.message;
    return;
  }
  sessionStorage.setItem('comet-admin', secret);
  $('#sign-in').hidden = true;
  $('#dashboard').hidden = false;
  $('#sign-out').hidden = false;
  $('#sign-in-error').textContent = '';
  last = null;
  await refresh();
  timer = setInterval(refresh, EVERY_MS);
}

function signOut(why = '') {
  clearInterval(timer);
  secret = '';
  sessionStorage.removeItem('comet-admin');
  $('#dashboard').hidden = true;
  $('#sign-out').hidden = true;
  $('#sign-in').hidden = false;
  $('#sign-in-error').textContent = why;
  $('#status').textContent = 'signed out';
}

/** The publish form's data: JSON when it parses, else the text as it is. */
function data(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function show(target, value) {
  $(target).textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

document.addEventListener('DOMContentLoaded', () => {
  charts.connections = new LineChart($('#connections-chart'), { className: 'connections' });
  charts.rate = new LineChart($('#rate-chart'), { className: 'rate' });

  $('#sign-in').addEventListener('submit', (event) => {
    event.preventDefault();
    signIn($('#secret').value);
  });
  $('#sign-out').addEventListener('click', () => signOut());

  $('#publish').addEventListener('submit', async (event) => {
    event.preventDefault();
    const channel = $('#publish-channel').value;
    try {
      await call('publish', { channel, data: data($('#publish-data').value) });
      show('#publish-result', `published to ${channel}`);
    } catch (error) {
      show('#publish-result', `refused: ${error.message}`);
    }
  });

  $('#lookup').addEventListener('submit', async (event) => {
    event.preventDefault();
    const method = event.submitter?.name === 'history' ? 'history' : 'presence';
    try {
      show('#lookup-result', await call(method, { channel: $('#lookup-channel').value }));
    } catch (error) {
      show('#lookup-result', `${method}: ${error.message}`);
    }
  });

  if (secret) signIn(secret);
});
