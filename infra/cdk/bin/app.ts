#!/usr/bin/env node
/**
 * The driftloop CDK app: one stack holding one DriftLoop construct (lib/drift-loop.ts), its props
 * as CloudFormation parameters (lib/driftloop-stack.ts).
 *
 *   npm ci && npx cdk synth            # builds the four binaries with cargo lambda, then synthesizes
 *   npx cdk deploy --parameters SageMakerExecutionRoleArn=arn:aws:iam::...:role/...
 *   DRIFTLOOP_SKIP_BUNDLING=1 node dist/bin/app.js   # synth without building (offline checks)
 *
 * No context lookups, no environment-specific values: the synthesized template is the same offline
 * and on any account (account and region stay CloudFormation pseudo parameters).
 */
import { App } from 'aws-cdk-lib';
import { DriftLoopStack } from '../lib/driftloop-stack';

const skipBundling = process.env.DRIFTLOOP_SKIP_BUNDLING === '1';
const app = new App({
  outdir: process.env.CDK_OUTDIR ?? 'cdk.out',
  analyticsReporting: false,
});
// Set after construction so it also wins over the CLI's own bundling-stacks (`npx cdk synth`).
if (skipBundling) app.node.setContext('aws:cdk:bundling-stacks', []);
new DriftLoopStack(app, process.env.DRIFTLOOP_STACK_NAME ?? 'driftloop');
app.synth();
