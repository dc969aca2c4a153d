// openapi.yaml, embedded so the binary serves it without the source tree (the package declares no resources).
// OpenAPIDocumentTests checks that this text equals the file byte for byte: edit both together.

/// The API description served at `/openapi.yaml`.
enum OpenAPIDocument {
    static let yaml = #"""
openapi: 3.1.0
info:
  title: dynstereo
  version: 1.0.0
  summary: Temporally consistent disparity and depth from rectified stereo videos (DynamicStereo on CPU).
  description: |
    Submit a stereo video as two tars of PNG frames; a worker runs the network and stores disparity maps,
    colourised previews, optional depth and side-by-side video frames. Every error has the body
    `{"error": {"code": "...", "message": "..."}}`.
servers:
  - url: /
# Once any API key exists (`dynstereo keys create`), every route but the probes, /metrics and this document
# needs `Authorization: Bearer <key>`; with no key at all the server runs open. The empty entry says so.
security:
  - apiKey: []
  - {}
paths:
  /jobs:
    post:
      summary: Submit a job
      description: |
        A multipart/form-data body (`curl -F left=@left.tar -F right=@right.tar -F iters=20 ...`). The body is
        streamed to disk; the frames are validated (PNG, equal counts, one size, limits) before the job is queued.
        With an `Idempotency-Key`, repeating the same submission returns the same job (200); reusing the key
        with a different payload is refused (422). Idempotency keys are scoped to the API key that sends them.

        Per-key limits (once API keys exist; an open server has none): the jobs a key may have queued or
        running at once, and the request body bytes it may upload per UTC day (the key's own values from
        `dynstereo keys create`, else the server's `--max-queued-jobs-per-key` and
        `--max-upload-bytes-per-day-per-key`). Past either the answer is 429 with `Retry-After`: 30 seconds for
        queued jobs, the seconds until the next midnight UTC for uploads. A `Content-Length` past the key's
        remaining bytes is refused before the body is read (and the connection closed); a chunked body as
        soon as it passes them. A replay of an existing job counts against neither limit.
      operationId: submitJob
      parameters:
        - name: Idempotency-Key
          in: header
          required: false
          schema: {type: string, minLength: 1, maxLength: 200}
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [left, right]
              properties:
                left: {type: string, format: binary, description: Tar of the left view's PNG frames, paired by sorted name.}
                right: {type: string, format: binary, description: Tar of the right view's PNG frames.}
                iters: {type: integer, minimum: 2, maximum: 100, default: 20}
                kernel_size: {type: integer, minimum: 2, maximum: 64, default: 20}
                focal_px: {type: number, exclusiveMinimum: 0, description: With baseline_m, enables depth outputs.}
                baseline_m: {type: number, exclusiveMinimum: 0}
      responses:
        '202':
          description: Queued.
          headers:
            Location: {schema: {type: string}, description: The job's URL.}
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Job'}
        '200':
          description: An idempotent retry; the existing job.
          headers:
            Location: {schema: {type: string}}
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Job'}
        '401': {$ref: '#/components/responses/Error'}
        '403': {$ref: '#/components/responses/Error'}
        '400': {$ref: '#/components/responses/Error'}
        '413': {$ref: '#/components/responses/Error'}
        '415': {$ref: '#/components/responses/Error'}
        '422': {$ref: '#/components/responses/Error'}
        '429':
          description: |
            A per-key limit: `too_many_queued_jobs` (the key has its limit of jobs queued or running) or
            `daily_upload_limit` (the upload would pass the key's bytes for this UTC day).
          headers:
            Retry-After:
              schema: {type: integer, minimum: 1}
              description: Seconds to wait; 30 for queued jobs, until the next midnight UTC for uploads.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
        '503': {$ref: '#/components/responses/Error'}
    get:
      summary: List jobs, newest first
      operationId: listJobs
      parameters:
        - {name: status, in: query, schema: {$ref: '#/components/schemas/Status'}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 50}}
        - {name: cursor, in: query, schema: {type: string}, description: next_cursor of the previous page.}
      responses:
        '200':
          description: A page of jobs.
          content:
            application/json:
              schema:
                type: object
                required: [jobs, next_cursor]
                properties:
                  jobs: {type: array, items: {$ref: '#/components/schemas/Job'}}
                  next_cursor: {type: [string, 'null']}
        '401': {$ref: '#/components/responses/Error'}
        '403': {$ref: '#/components/responses/Error'}
        '400': {$ref: '#/components/responses/Error'}
  /jobs/{id}:
    parameters:
      - {$ref: '#/components/parameters/JobID'}
    get:
      summary: A job's status, progress, parameters and result URLs
      operationId: getJob
      responses:
        '200':
          description: The job.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Job'}
        '401': {$ref: '#/components/responses/Error'}
        '403': {$ref: '#/components/responses/Error'}
        '404': {$ref: '#/components/responses/Error'}
    delete:
      summary: Delete a job with its inputs and results
      operationId: deleteJob
      responses:
        '204': {description: Deleted.}
        '401': {$ref: '#/components/responses/Error'}
        '403': {$ref: '#/components/responses/Error'}
        '404': {$ref: '#/components/responses/Error'}
  /jobs/{id}/cancel:
    parameters:
      - {$ref: '#/components/parameters/JobID'}
    post:
      summary: Cancel a job
      description: A queued job is cancelled at once; a running one stops within seconds. A finished job is returned unchanged.
      operationId: cancelJob
      responses:
        '200':
          description: The job after the request.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Job'}
        '401': {$ref: '#/components/responses/Error'}
        '403': {$ref: '#/components/responses/Error'}
        '404': {$ref: '#/components/responses/Error'}
  /jobs/{id}/result.tar:
    parameters:
      - {$ref: '#/components/parameters/JobID'}
    get:
      summary: Every result in one tar, streamed
      operationId: getResultTar
      responses:
        '200':
          description: A ustar archive of the paths listed in urls.results.
          content:
            application/x-tar:
              schema: {type: string, format: binary}
        '401': {$ref: '#/components/responses/Error'}
        '403': {$ref: '#/components/responses/Error'}
        '404': {$ref: '#/components/responses/Error'}
        '409': {$ref: '#/components/responses/Error'}
        '410': {$ref: '#/components/responses/Error'}
  /jobs/{id}/disparity.npy:
    parameters:
      - {$ref: '#/components/parameters/JobID'}
    get:
      summary: Disparity of every frame as one float32 array (frames, height, width)
      operationId: getDisparityArray
      responses:
        '200':
          description: A NumPy .npy file.
          content:
            application/octet-stream:
              schema: {type: string, format: binary}
        '401': {$ref: '#/components/responses/Error'}
        '403': {$ref: '#/components/responses/Error'}
        '404': {$ref: '#/components/responses/Error'}
        '409': {$ref: '#/components/responses/Error'}
        '410': {$ref: '#/components/responses/Error'}
  /jobs/{id}/{kind}/{file}:
    parameters:
      - {$ref: '#/components/parameters/JobID'}
      - name: kind
        in: path
        required: true
        schema: {type: string, enum: [disparity, color, depth, video]}
        description: |
          disparity: 16-bit PNG of disparity; color: colourised disparity; depth: 16-bit depth PNG (calibrated
          jobs only); video: the left frame beside its colourised disparity.
      - name: file
        in: path
        required: true
        schema: {type: string, example: 0.png}
        description: The frame's result file, as listed in urls.results.
    get:
      summary: One frame's result image
      operationId: getFrameResult
      responses:
        '200':
          description: A PNG image.
          content:
            image/png:
              schema: {type: string, format: binary}
        '401': {$ref: '#/components/responses/Error'}
        '403': {$ref: '#/components/responses/Error'}
        '404': {$ref: '#/components/responses/Error'}
        '409': {$ref: '#/components/responses/Error'}
        '410': {$ref: '#/components/responses/Error'}
  /healthz:
    get:
      security: []
      summary: The process is up
      operationId: health
      responses:
        '200': {description: Up., content: {application/json: {schema: {type: object}}}}
  /readyz:
    get:
      security: []
      summary: The database answers
      operationId: ready
      responses:
        '200': {description: Ready., content: {application/json: {schema: {type: object}}}}
        '503': {$ref: '#/components/responses/Error'}
  /metrics:
    get:
      security: []
      summary: Prometheus metrics
      description: |
        dynstereo_jobs{status}, dynstereo_jobs_finished_total, dynstereo_jobs_failed_total,
        dynstereo_job_duration_seconds (histogram over recent successful jobs), dynstereo_frames_per_second,
        dynstereo_http_requests_total{route,code}.
      operationId: metrics
      responses:
        '200':
          description: Text exposition format 0.0.4.
          content:
            text/plain:
              schema: {type: string}
  /openapi.yaml:
    get:
      security: []
      summary: This document
      operationId: openapi
      responses:
        '200':
          description: OpenAPI 3.1.
          content:
            application/yaml:
              schema: {type: string}
components:
  securitySchemes:
    apiKey:
      type: http
      scheme: bearer
      description: A key from `dynstereo keys create`; a key sees and touches only its own jobs.
  parameters:
    JobID:
      name: id
      in: path
      required: true
      schema: {type: string, format: uuid}
  responses:
    Error:
      description: |
        400 malformed request, 401 missing or unknown API key, 403 revoked API key, 404 unknown job (or another
        key's job) or route, 405 wrong method, 408 client too slow, 409 results of an
        unfinished job, 410 results deleted by retention, 413 body or frames too large, 415 not multipart, 422 invalid frames or parameters or an
        idempotency conflict, 429 a per-key limit (with Retry-After), 431 headers too large, 503 database
        unavailable.
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Error'}
  schemas:
    Status:
      type: string
      enum: [queued, running, succeeded, failed, cancelled]
    Error:
      type: object
      required: [error]
      properties:
        error:
          type: object
          required: [code, message]
          properties:
            code: {type: string, examples: [missing_frames, frame_count_mismatch, idempotency_conflict]}
            message: {type: string}
    Job:
      type: object
      required: [id, status, progress, created_at, started_at, finished_at, attempt, parameters, error, results,
                 results_expired_at, urls]
      properties:
        id: {type: string, format: uuid}
        status: {$ref: '#/components/schemas/Status'}
        progress:
          type: object
          required: [frames_done, frames_total]
          properties:
            frames_done: {type: integer}
            frames_total: {type: integer}
        created_at: {type: string, format: date-time}
        started_at: {type: [string, 'null'], format: date-time}
        finished_at: {type: [string, 'null'], format: date-time}
        attempt: {type: integer, description: Attempts spent so far.}
        parameters:
          type: object
          required: [iters, kernel_size, focal_px, baseline_m]
          properties:
            iters: {type: integer}
            kernel_size: {type: integer}
            focal_px: {type: [number, 'null']}
            baseline_m: {type: [number, 'null']}
        error:
          oneOf:
            - type: 'null'
            - type: object
              required: [code, message]
              properties:
                code: {type: string}
                message: {type: string}
        results:
          type: string
          enum: [pending, available, none, expired]
          description: |
            pending until the job finishes; available once it has succeeded; none after it failed or was
            cancelled; expired once retention deleted its inputs and results (every result URL then answers
            410). Retention runs in the workers: `dynstereo work --retention-days N` (default 7) after the job
            finished. The job itself, its status and error stay.
        results_expired_at: {type: [string, 'null'], format: date-time, description: When retention deleted them.}
        urls:
          type: object
          required: [self, cancel, result_tar, results]
          properties:
            self: {type: string}
            cancel: {type: string}
            result_tar: {type: [string, 'null'], description: Set once the job has succeeded, until its results expire.}
            results:
              type: [array, 'null']
              items: {type: string}
              description: Every result file's URL, once the job has succeeded, until its results expire.

"""#
}
