/**
 * `claudemesh ui` over plain HTTP (SPEC.md §19.2): what it serves with the token, and every
 * refusal: no or wrong token (page, script, stylesheet, event stream), a Host other than
 * 127.0.0.1/localhost with its port (DNS rebinding), a foreign Origin, a POST without its
 * Origin, token header or JSON type (CSRF), other methods, no CORS; `--json` and SIGTERM.
 */
import { describe, expect, it } from 'vitest'
import { cli, daemonWorld } from './helpers.js'
import { raw, startUi } from './ui-support.js'

const { home, daemon } = daemonWorld('cm-uihttp-')

interface Inbox {
  messages: Array<{ body: string; fromName: string }>
}

describe('claudemesh ui over HTTP', () => {
  it('serves the page, its files and the live feed with the token only, and refuses rebinding, cross-origin and CSRF requests', async () => {
    const env = await home()
    const alice = daemon('alice', env)
    const bob = daemon('bob', env)
    await alice.line(/^\+ bob /)
    const ui = await startUi('alice', env)
    expect(ui.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${ui.port}/t/[A-Za-z0-9_-]{43}/$`))
    const base = `/t/${ui.token}/`
    const own = { origin: `http://127.0.0.1:${ui.port}` }

    // served with the token, with the security headers and no CORS
    for (const [path, type] of [
      ['', 'text/html'],
      ['app.js', 'text/javascript'],
      ['app.css', 'text/css']
    ]) {
      const r = await raw(ui.port, 'GET', base + path)
      expect(r.status, path).toBe(200)
      expect(r.headers['content-type']).toContain(type)
      expect(r.headers['content-security-policy']).toMatch(/^default-src 'self'; script-src 'self';/)
      expect(r.headers['x-content-type-options']).toBe('nosniff')
      expect(r.headers['access-control-allow-origin']).toBeUndefined()
    }
    expect((await raw(ui.port, 'GET', `/t/${ui.token}`)).headers.location).toBe(base)
    expect((await raw(ui.port, 'GET', base, { host: `localhost:${ui.port}` })).status).toBe(200)

    // no token, a wrong one (one character off, or a prefix), on every kind of path
    const wrong = `${ui.token.slice(0, -1)}${ui.token.endsWith('A') ? 'B' : 'A'}`
    for (const path of [
      '/',
      '/app.js',
      '/events',
      '/favicon.ico',
      `/t/${wrong}/`,
      `/t/${wrong}/app.js`,
      `/t/${wrong}/events`,
      `/t/${ui.token.slice(0, 20)}/`,
      '/t//events',
      `/x${base}`
    ]) {
      const r = await raw(ui.port, 'GET', path)
      expect(r.status, path).toBe(403)
      expect(r.body).not.toContain('<html')
    }
    // DNS rebinding: the right token through another name, or another port, is refused
    for (const host of [`evil.example:${ui.port}`, 'evil.example', `127.0.0.1:${ui.port + 1}`, `127.0.0.1.evil.example:${ui.port}`, '']) {
      expect((await raw(ui.port, 'GET', `${base}events`, { host })).status, host).toBe(421)
    }
    // another origin's fetch or EventSource
    expect((await raw(ui.port, 'GET', `${base}events`, { origin: 'http://evil.example' })).status).toBe(403)
    expect((await raw(ui.port, 'GET', base, { origin: 'null' })).status).toBe(403)

    // CSRF: a POST needs the own Origin, the token header and a JSON body
    const send = JSON.stringify({ to: 'bob', message: 'from a test' })
    const json = { 'content-type': 'application/json', 'x-claudemesh-token': ui.token }
    expect((await raw(ui.port, 'POST', `${base}api/send`, { ...json }, send)).status).toBe(403)
    expect((await raw(ui.port, 'POST', `${base}api/send`, { ...json, origin: 'http://evil.example' }, send)).status).toBe(403)
    expect((await raw(ui.port, 'POST', `${base}api/send`, { ...json, origin: `http://127.0.0.1:${ui.port + 1}` }, send)).status).toBe(403)
    expect((await raw(ui.port, 'POST', `${base}api/send`, { ...own, 'content-type': 'application/json' }, send)).status).toBe(403)
    expect(
      (await raw(ui.port, 'POST', `${base}api/send`, { ...own, 'content-type': 'application/json', 'x-claudemesh-token': wrong }, send))
        .status
    ).toBe(403)
    expect(
      (
        await raw(
          ui.port,
          'POST',
          `${base}api/send`,
          { ...own, 'x-claudemesh-token': ui.token, 'content-type': 'application/x-www-form-urlencoded' },
          'to=bob&message=x'
        )
      ).status
    ).toBe(415)
    expect(
      (await raw(ui.port, 'POST', `${base}api/send`, { ...own, 'x-claudemesh-token': ui.token, 'content-type': 'text/plain' }, send)).status
    ).toBe(415)
    const preflight = await raw(ui.port, 'OPTIONS', `${base}api/send`, { ...own, 'access-control-request-method': 'POST' })
    expect(preflight.status).toBe(405)
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined()
    expect((await raw(ui.port, 'DELETE', `${base}api/send`, { ...own, ...json })).status).toBe(405)
    for (const action of ['constructor', 'toString', '__proto__', 'state.delete', '']) {
      expect((await raw(ui.port, 'POST', `${base}api/${action}`, { ...own, ...json }, '{}')).status, action).toBe(404)
    }
    expect((await raw(ui.port, 'POST', `${base}api/send`, { ...own, ...json }, 'x'.repeat(300 * 1024))).status).toBe(413)
    const bad = await raw(ui.port, 'POST', `${base}api/send`, { ...own, ...json }, JSON.stringify({ to: 'bob', message: '' }))
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.body)).toMatchObject({ ok: false, error: { message: expect.stringMatching(/^invalid message: /) } })
    const nobody = await raw(ui.port, 'POST', `${base}api/send`, { ...own, ...json }, JSON.stringify({ to: 'zed', message: 'x' }))
    expect(nobody.status).toBe(400)
    expect(JSON.parse(nobody.body).error.message).toMatch(/no peer "zed"/)
    expect((await raw(ui.port, 'POST', `${base}api/send`, { ...own, ...json }, '{nope')).status).toBe(400)
    // none of the refused requests sent anything
    expect((JSON.parse((await cli(['inbox', '--name', 'bob', '--all', '--json'], env)).stdout) as Inbox).messages).toEqual([])

    // the right request, from localhost too, is done as alice
    const ok = await raw(
      ui.port,
      'POST',
      `${base}api/send`,
      { ...json, host: `localhost:${ui.port}`, origin: `http://localhost:${ui.port}` },
      send
    )
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body).result.results[0]).toMatchObject({ name: 'bob' })
    await bob.line(/^> alice: from a test/)

    // SIGTERM ends it cleanly
    ui.proc.kill('SIGTERM')
    expect(await ui.exited).toBe(0)
  })

  it('says clearly when there is no node to show, and refuses a bad --port', async () => {
    const env = await home()
    const none = await cli(['ui', '--no-open'], env)
    expect(none.code).not.toBe(0)
    expect(none.stderr).toMatch(/^claudemesh: no node of mesh "team" is running here/)
    const port = await cli(['ui', '--no-open', '--port', '70000'], env)
    expect(port.code).toBe(2)
    expect(port.stderr).toMatch(/--port takes a whole number/)
  })
})
