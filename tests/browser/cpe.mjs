// A small simulated CPE for the browser tests: it speaks CWMP over real
// HTTP to luacs (Inform, then the ACS's RPCs until the ACS ends the
// session with 204), keeps a tiny TR-181 data model, and records every RPC
// it was sent so a test can see what reached the device. It also listens
// for connection requests (an HTTP GET on 127.0.0.1) and informs with
// "6 CONNECTION REQUEST" when it gets one.
//
// Only what the tests need: GetParameterValues, SetParameterValues,
// GetParameterNames, Reboot, FactoryReset, Download, GetRPCMethods; any
// other RPC is answered with a CWMP fault 9000.

import http from 'node:http';

const ENV_OPEN = '<?xml version="1.0" encoding="UTF-8"?>\n<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-0">';

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const unesc = (s) => String(s).replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'")
  .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n))).replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCodePoint(parseInt(n, 16)))
  .replace(/&amp;/g, '&');

function envelope(id, body) {
  return `${ENV_OPEN}<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">${esc(id)}</cwmp:ID></soap-env:Header><soap-env:Body>${body}</soap-env:Body></soap-env:Envelope>`;
}

// Every <[prefix:]tag ...>text</[prefix:]tag> in xml.
function all(xml, tag) {
  const re = new RegExp(`<(?:[\\w-]+:)?${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</(?:[\\w-]+:)?${tag}>`, 'g');
  return [...xml.matchAll(re)].map((m) => m[1]);
}
const one = (xml, tag) => all(xml, tag)[0];

function paramList(values) {
  return `<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[${values.length}]">${values
    .map(([n, v, t]) => `<ParameterValueStruct><Name>${esc(n)}</Name><Value xsi:type="xsd:${t}">${esc(v)}</Value></ParameterValueStruct>`)
    .join('')}</ParameterList>`;
}

export class Cpe {
  // opts: {acs (URL of luacs' CWMP listener), serial, oui, productClass,
  // manufacturer, model, software}
  constructor(opts) {
    this.acs = opts.acs;
    this.oui = opts.oui || '00AABB';
    this.productClass = opts.productClass || 'AcmeBox';
    this.serial = opts.serial;
    this.manufacturer = opts.manufacturer || 'Acme';
    this.received = []; // [{method, body}] every RPC the ACS sent, in order
    this.pendingEvents = [];
    this.sessions = 0;
    this.crUrl = '';
    this.busy = null;
    // name -> [value, type, writable]
    this.params = new Map(Object.entries({
      'Device.RootDataModelVersion': ['2.11', 'string', false],
      'Device.DeviceInfo.Manufacturer': [this.manufacturer, 'string', false],
      'Device.DeviceInfo.ModelName': [opts.model || 'AcmeBox 100', 'string', false],
      'Device.DeviceInfo.SerialNumber': [this.serial, 'string', false],
      'Device.DeviceInfo.HardwareVersion': ['1.0', 'string', false],
      'Device.DeviceInfo.SoftwareVersion': [opts.software || '1.2.3', 'string', false],
      'Device.DeviceInfo.ProvisioningCode': ['', 'string', true],
      'Device.DeviceInfo.UpTime': ['3600', 'unsignedInt', false],
      'Device.ManagementServer.PeriodicInformEnable': ['true', 'boolean', true],
      'Device.ManagementServer.PeriodicInformInterval': ['86400', 'unsignedInt', true],
      'Device.ManagementServer.ConnectionRequestURL': ['', 'string', false],
      'Device.ManagementServer.ParameterKey': ['', 'string', false],
      'Device.Ethernet.Interface.1.MACAddress': [opts.mac || '00:AA:BB:00:00:01', 'string', false],
      'Device.WiFi.SSID.1.SSID': [opts.ssid || 'acme-wifi', 'string', true],
      'Device.WiFi.SSID.1.Enable': ['true', 'boolean', true],
    }));
    this.id = `${this.oui}-${encodeURIComponent(this.productClass)}-${encodeURIComponent(this.serial)}`;
  }

  value(name) {
    const p = this.params.get(name);
    return p ? p[0] : undefined;
  }

  // The RPCs of a method the ACS sent so far.
  got(method) {
    return this.received.filter((r) => r.method === method);
  }

  // Listens for connection requests on 127.0.0.1 (luacs must allow it:
  // [connection_request] allow = 127.0.0.0/8, deny =).
  async listen() {
    this.server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(204);
      res.end();
      this.inform(['6 CONNECTION REQUEST']).catch((e) => { this.lastError = e; });
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.crUrl = `http://127.0.0.1:${this.server.address().port}/cr`;
    this.params.get('Device.ManagementServer.ConnectionRequestURL')[0] = this.crUrl;
  }

  close() {
    if (this.server) this.server.close();
  }

  async post(body, cookie) {
    const headers = { 'Content-Type': 'text/xml; charset="utf-8"' };
    if (body) headers.SOAPAction = '""';
    if (cookie) headers.Cookie = cookie;
    const res = await fetch(this.acs, { method: 'POST', headers, body: body || '' });
    const text = await res.text();
    const set = res.headers.get('set-cookie');
    return { status: res.status, text, cookie: set ? set.split(';')[0] : null };
  }

  // One whole session; concurrent calls run one after the other.
  inform(events) {
    const run = async () => {
      const codes = [...new Set([...(events || ['2 PERIODIC']), ...this.pendingEvents])];
      this.pendingEvents = [];
      const evXml = codes.map((c) => {
        const [code, key] = Array.isArray(c) ? c : [c, ''];
        return `<EventStruct><EventCode>${esc(code)}</EventCode><CommandKey>${esc(key)}</CommandKey></EventStruct>`;
      }).join('');
      const forced = ['Device.RootDataModelVersion', 'Device.DeviceInfo.HardwareVersion', 'Device.DeviceInfo.SoftwareVersion',
        'Device.DeviceInfo.ProvisioningCode', 'Device.DeviceInfo.ModelName', 'Device.ManagementServer.ConnectionRequestURL',
        'Device.ManagementServer.ParameterKey'].map((n) => [n, ...this.params.get(n)]);
      const body = `<cwmp:Inform><DeviceId><Manufacturer>${esc(this.manufacturer)}</Manufacturer><OUI>${esc(this.oui)}</OUI><ProductClass>${esc(this.productClass)}</ProductClass><SerialNumber>${esc(this.serial)}</SerialNumber></DeviceId>`
        + `<Event soap-enc:arrayType="cwmp:EventStruct[${codes.length}]">${evXml}</Event><MaxEnvelopes>1</MaxEnvelopes>`
        + `<CurrentTime>${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}</CurrentTime><RetryCount>0</RetryCount>${paramList(forced)}</cwmp:Inform>`;
      let r = await this.post(envelope(`inf-${Date.now()}`, body));
      if (r.status !== 200 || !/InformResponse/.test(r.text)) throw new Error(`Inform answered ${r.status}: ${r.text.slice(0, 300)}`);
      const cookie = r.cookie;
      r = await this.post('', cookie);
      for (let n = 0; n < 100 && r.status === 200 && r.text.trim(); n++) {
        const answer = this.answer(r.text);
        r = await this.post(answer, cookie);
      }
      if (r.status !== 204 && r.status !== 200) throw new Error(`session ended with HTTP ${r.status}: ${r.text.slice(0, 300)}`);
      this.sessions++;
    };
    this.busy = (this.busy || Promise.resolve()).catch(() => {}).then(run);
    return this.busy;
  }

  // The answer to one ACS request.
  answer(xml) {
    const id = unesc(one(xml, 'ID') || '1');
    const body = one(xml, 'Body') || '';
    const m = body.match(/<(?:[\w-]+:)?(\w+)[\s>/]/);
    const method = m ? m[1] : '?';
    this.received.push({ method, body });
    const ok = (inner) => envelope(id, inner);
    switch (method) {
      case 'GetParameterValues': {
        const names = all(one(body, 'ParameterNames') || '', 'string').map(unesc);
        const out = [];
        for (const n of names) {
          for (const [k, v] of this.params) if (n === '' || k === n || (n.endsWith('.') && k.startsWith(n))) out.push([k, v[0], v[1]]);
        }
        if (!out.length) return this.fault(id, 9005, 'Invalid parameter name');
        return ok(`<cwmp:GetParameterValuesResponse>${paramList(out)}</cwmp:GetParameterValuesResponse>`);
      }
      case 'SetParameterValues': {
        const structs = all(one(body, 'ParameterList') || '', 'ParameterValueStruct');
        for (const s of structs) {
          const n = unesc(one(s, 'Name'));
          const p = this.params.get(n);
          if (!p) return this.fault(id, 9005, `Invalid parameter name ${n}`);
          if (!p[2]) return this.fault(id, 9008, `Attempt to set a non-writable parameter ${n}`);
        }
        for (const s of structs) this.params.get(unesc(one(s, 'Name')))[0] = unesc(one(s, 'Value') ?? '');
        return ok('<cwmp:SetParameterValuesResponse><Status>0</Status></cwmp:SetParameterValuesResponse>');
      }
      case 'GetParameterNames': {
        const path = unesc(one(body, 'ParameterPath') || '');
        const names = [...this.params.keys()].filter((k) => k.startsWith(path));
        const items = names.map((n) => `<ParameterInfoStruct><Name>${esc(n)}</Name><Writable>${this.params.get(n)[2] ? 1 : 0}</Writable></ParameterInfoStruct>`).join('');
        return ok(`<cwmp:GetParameterNamesResponse><ParameterList soap-enc:arrayType="cwmp:ParameterInfoStruct[${names.length}]">${items}</ParameterList></cwmp:GetParameterNamesResponse>`);
      }
      case 'Reboot':
        this.pendingEvents.push('1 BOOT', ['M Reboot', unesc(one(body, 'CommandKey') || '')]);
        return ok('<cwmp:RebootResponse/>');
      case 'FactoryReset':
        this.pendingEvents.push('0 BOOTSTRAP', '1 BOOT');
        return ok('<cwmp:FactoryResetResponse/>');
      case 'Download':
        return ok('<cwmp:DownloadResponse><Status>1</Status><StartTime>0001-01-01T00:00:00Z</StartTime><CompleteTime>0001-01-01T00:00:00Z</CompleteTime></cwmp:DownloadResponse>');
      case 'GetRPCMethods':
        return ok('<cwmp:GetRPCMethodsResponse><MethodList soap-enc:arrayType="xsd:string[6]"><string>GetRPCMethods</string><string>GetParameterValues</string><string>SetParameterValues</string><string>GetParameterNames</string><string>Reboot</string><string>Download</string></MethodList></cwmp:GetRPCMethodsResponse>');
      default:
        return this.fault(id, 9000, `Method not supported: ${method}`);
    }
  }

  fault(id, code, text) {
    return envelope(id, `<soap-env:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>${code}</FaultCode><FaultString>${esc(text)}</FaultString></cwmp:Fault></detail></soap-env:Fault>`);
  }
}
