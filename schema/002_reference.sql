-- SPDX-License-Identifier: Apache-2.0
--
-- 002_reference: channels, the starter service catalogue and the regions of
-- Kota Bandung (32.73). Reference data is read by the views and by
-- analysts; usage_hourly never depends on it, so a code missing here only
-- means a view cannot label or classify it (an unknown channel counts as
-- neither digital nor manual). Correct or extend this data with a new
-- migration (INSERT .. ON CONFLICT DO UPDATE), never by editing this file.

-- Which channel counts as digital is data, not code: the daemon only knows
-- the channel names, the views read mode from here.
CREATE TABLE kanal.channel (
    code  text PRIMARY KEY,
    mode  text NOT NULL CHECK (mode IN ('digital', 'manual')),
    label text NOT NULL
);

COMMENT ON TABLE kanal.channel IS 'Channels and whether each counts as digital or manual.';

INSERT INTO kanal.channel (code, mode, label) VALUES
    ('web',        'digital', 'Situs web / portal layanan'),
    ('mobile_app', 'digital', 'Aplikasi seluler'),
    ('kiosk',      'digital', 'Anjungan layanan mandiri (kios)'),
    ('chat',       'digital', 'Chat / WhatsApp / chatbot'),
    ('partner',    'digital', 'Mitra: bank, dompet digital, QRIS'),
    ('counter',    'manual',  'Loket pelayanan'),
    ('phone',      'manual',  'Telepon / call center'),
    ('outreach',   'manual',  'Layanan jemput bola'),
    ('paper',      'manual',  'Formulir kertas / surat');

-- code is agency.service, the same syntax kanald validates on the wire;
-- agency is the Perangkat Daerah of the Pemerintah Kota Bandung.
CREATE TABLE kanal.service (
    code   text PRIMARY KEY
           CHECK (code ~ '^[a-z0-9][a-z0-9._-]{0,63}$' AND position('.' IN code) > 1),
    name   text NOT NULL,
    agency text NOT NULL
);

COMMENT ON TABLE kanal.service IS 'Service catalogue: code agency.service, Indonesian name, responsible agency.';

INSERT INTO kanal.service (code, name, agency) VALUES
    ('dukcapil.akta-lahir',         'Penerbitan Akta Kelahiran',                          'Dinas Kependudukan dan Pencatatan Sipil'),
    ('dukcapil.akta-kematian',      'Penerbitan Akta Kematian',                           'Dinas Kependudukan dan Pencatatan Sipil'),
    ('dukcapil.akta-perkawinan',    'Penerbitan Akta Perkawinan',                         'Dinas Kependudukan dan Pencatatan Sipil'),
    ('dukcapil.akta-perceraian',    'Penerbitan Akta Perceraian',                         'Dinas Kependudukan dan Pencatatan Sipil'),
    ('dukcapil.kartu-keluarga',     'Penerbitan dan Perubahan Kartu Keluarga (KK)',       'Dinas Kependudukan dan Pencatatan Sipil'),
    ('dukcapil.ktp-el',             'Perekaman dan Pencetakan KTP Elektronik',            'Dinas Kependudukan dan Pencatatan Sipil'),
    ('dukcapil.kia',                'Penerbitan Kartu Identitas Anak (KIA)',              'Dinas Kependudukan dan Pencatatan Sipil'),
    ('dukcapil.pindah-datang',      'Surat Keterangan Pindah dan Pindah Datang',          'Dinas Kependudukan dan Pencatatan Sipil'),
    ('dukcapil.ikd',                'Aktivasi Identitas Kependudukan Digital (IKD)',      'Dinas Kependudukan dan Pencatatan Sipil'),
    ('dpmptsp.izin-usaha',          'Perizinan Berusaha / Nomor Induk Berusaha (NIB)',    'Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu'),
    ('dpmptsp.pbg',                 'Persetujuan Bangunan Gedung (PBG)',                  'Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu'),
    ('dpmptsp.slf',                 'Sertifikat Laik Fungsi (SLF)',                       'Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu'),
    ('dpmptsp.izin-reklame',        'Izin Penyelenggaraan Reklame',                       'Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu'),
    ('dpmptsp.sip-nakes',           'Surat Izin Praktik Tenaga Kesehatan (SIP)',          'Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu'),
    ('bapenda.pbb',                 'Pajak Bumi dan Bangunan Perdesaan dan Perkotaan (PBB-P2)', 'Badan Pendapatan Daerah'),
    ('bapenda.bphtb',               'Bea Perolehan Hak atas Tanah dan Bangunan (BPHTB)',  'Badan Pendapatan Daerah'),
    ('bapenda.pajak-restoran',      'Pajak Restoran',                                     'Badan Pendapatan Daerah'),
    ('bapenda.pajak-hotel',         'Pajak Hotel',                                        'Badan Pendapatan Daerah'),
    ('bapenda.pajak-reklame',       'Pajak Reklame',                                      'Badan Pendapatan Daerah'),
    ('dinkes.pendaftaran-puskesmas','Pendaftaran Pasien Puskesmas',                       'Dinas Kesehatan'),
    ('dinkes.jkn-pbi',              'Pendaftaran Peserta JKN/BPJS Kesehatan PBI Daerah',  'Dinas Kesehatan'),
    ('dinkes.imunisasi',            'Layanan Imunisasi Anak',                             'Dinas Kesehatan'),
    ('dinsos.dtks',                 'Pendaftaran dan Pembaruan Data Terpadu Kesejahteraan Sosial (DTKS)', 'Dinas Sosial'),
    ('disdik.ppdb',                 'Penerimaan Peserta Didik Baru (PPDB)',               'Dinas Pendidikan'),
    ('disnaker.kartu-pencari-kerja','Kartu Tanda Pencari Kerja (Kartu Kuning / AK-1)',    'Dinas Tenaga Kerja'),
    ('dishub.uji-kir',              'Pengujian Berkala Kendaraan Bermotor (Uji KIR)',     'Dinas Perhubungan'),
    ('diskominfo.lapor',            'Pengaduan Masyarakat (SP4N-LAPOR!)',                 'Dinas Komunikasi dan Informatika'),
    ('diskominfo.ppid',             'Permohonan Informasi Publik (PPID)',                 'Dinas Komunikasi dan Informatika');

-- Kemendagri codes. population is approximate (order of the 2020 census,
-- rounded to the thousand for kecamatan): it only weights demo traffic and
-- is not an official figure.
CREATE TABLE kanal.region (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{2}([.][0-9]{2}([.][0-9]{2}([.][0-9]{4})?)?)?$'),
    name        text NOT NULL,
    level       text NOT NULL CHECK (level IN ('provinsi', 'kota', 'kecamatan', 'kelurahan')),
    parent_code text,
    population  integer CHECK (population >= 0)
);

COMMENT ON TABLE kanal.region IS 'Kemendagri regions: Jawa Barat, Kota Bandung and its 30 kecamatan. population is approximate.';

INSERT INTO kanal.region (code, name, level, parent_code, population) VALUES
    ('32',       'Jawa Barat',       'provinsi',  NULL,    48274162),
    ('32.73',    'Kota Bandung',     'kota',      '32',    2444160),
    ('32.73.01', 'Sukasari',         'kecamatan', '32.73', 81000),
    ('32.73.02', 'Coblong',          'kecamatan', '32.73', 112000),
    ('32.73.03', 'Babakan Ciparay',  'kecamatan', '32.73', 148000),
    ('32.73.04', 'Bojongloa Kaler',  'kecamatan', '32.73', 118000),
    ('32.73.05', 'Andir',            'kecamatan', '32.73', 95000),
    ('32.73.06', 'Cicendo',          'kecamatan', '32.73', 97000),
    ('32.73.07', 'Sukajadi',         'kecamatan', '32.73', 100000),
    ('32.73.08', 'Cidadap',          'kecamatan', '32.73', 59000),
    ('32.73.09', 'Bandung Wetan',    'kecamatan', '32.73', 30000),
    ('32.73.10', 'Astana Anyar',     'kecamatan', '32.73', 66000),
    ('32.73.11', 'Regol',            'kecamatan', '32.73', 81000),
    ('32.73.12', 'Batununggal',      'kecamatan', '32.73', 121000),
    ('32.73.13', 'Lengkong',         'kecamatan', '32.73', 70000),
    ('32.73.14', 'Cibeunying Kidul', 'kecamatan', '32.73', 107000),
    ('32.73.15', 'Bandung Kulon',    'kecamatan', '32.73', 140000),
    ('32.73.16', 'Kiaracondong',     'kecamatan', '32.73', 131000),
    ('32.73.17', 'Bojongloa Kidul',  'kecamatan', '32.73', 88000),
    ('32.73.18', 'Cibeunying Kaler', 'kecamatan', '32.73', 70000),
    ('32.73.19', 'Sumur Bandung',    'kecamatan', '32.73', 35000),
    ('32.73.20', 'Antapani',         'kecamatan', '32.73', 74000),
    ('32.73.21', 'Bandung Kidul',    'kecamatan', '32.73', 59000),
    ('32.73.22', 'Buahbatu',         'kecamatan', '32.73', 94000),
    ('32.73.23', 'Rancasari',        'kecamatan', '32.73', 77000),
    ('32.73.24', 'Arcamanik',        'kecamatan', '32.73', 70000),
    ('32.73.25', 'Cibiru',           'kecamatan', '32.73', 74000),
    ('32.73.26', 'Ujung Berung',     'kecamatan', '32.73', 85000),
    ('32.73.27', 'Gedebage',         'kecamatan', '32.73', 41000),
    ('32.73.28', 'Panyileukan',      'kecamatan', '32.73', 40000),
    ('32.73.29', 'Cinambo',          'kecamatan', '32.73', 25000),
    ('32.73.30', 'Mandalajati',      'kecamatan', '32.73', 71000);

GRANT SELECT ON kanal.channel, kanal.service, kanal.region TO kanal_analyst;
