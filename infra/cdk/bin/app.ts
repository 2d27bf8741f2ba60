#!/usr/bin/env node
/**
 * The driftloop CDK app: one stack holding one DriftLoop construct (lib/drift-loop.ts), its props
 * as CloudFormation parameters (lib/driftloop-stack.ts).
 *
 *   npm ci && npx cdk synth            # builds the four binaries with cargo lambda, then synthesizes
 *   npx cdk deploy --parameters SageMakerExecutionRoleArn=arn:aws:iam::...:role/...
 *   DRIFTLOOP_SKIP_BUNDLING=1 node dist/bin/app.js   # synth without building (offline checks)
 *   DRIFTLOOP_ARCH=x86_64 npx cdk synth   # x86_64 functions and binaries (default arm64, as template.yaml);
 *                                         # infra/tools/cdk-bundle-check runs a bundled synth and checks the binaries
 *
 * No context lookups, no environment-specific values: the synthesized template is the same offline
 * and on any account (account and region stay CloudFormation pseudo parameters).
 */
import { App } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DriftLoopStack } from '../lib/driftloop-stack';

const skipBundling = process.env.DRIFTLOOP_SKIP_BUNDLING === '1';
const app = new App({
  outdir: process.env.CDK_OUTDIR ?? 'cdk.out',
  analyticsReporting: false,
});
// Set after construction so it also wins over the CLI's own bundling-stacks (`npx cdk synth`).
if (skipBundling) app.node.setContext('aws:cdk:bundling-stacks', []);
// The same variable as infra/Makefile's (SAM): the architecture the functions run on and are built for.
const ARCHITECTURES: Record<string, lambda.Architecture> = { arm64: lambda.Architecture.ARM_64, x86_64: lambda.Architecture.X86_64 };
const arch = process.env.DRIFTLOOP_ARCH || 'arm64';
if (!(arch in ARCHITECTURES)) throw new Error(`DRIFTLOOP_ARCH must be arm64 or x86_64, not ${JSON.stringify(arch)}`);
new DriftLoopStack(app, process.env.DRIFTLOOP_STACK_NAME ?? 'driftloop', { loop: { architecture: ARCHITECTURES[arch] } });
app.synth();
